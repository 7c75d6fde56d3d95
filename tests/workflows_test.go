package tests

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/maricusco/infra/stacks"
)

// workflowFiles are the CI workflows, with the local composite action they share.
func workflowFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot, ".github", "workflows", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	out := map[string]string{}
	for _, p := range paths {
		out[filepath.Base(p)] = p
	}
	return out
}

// workflow is the part of a workflow file the rules look at.
type workflow struct {
	On          yaml.Node         `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Jobs        map[string]job    `yaml:"jobs"`
}

type job struct {
	If          string            `yaml:"if"`
	Permissions map[string]string `yaml:"permissions"`
	Timeout     int               `yaml:"timeout-minutes"`
	Environment any               `yaml:"environment"`
	Needs       any               `yaml:"needs"`
	Env         map[string]string `yaml:"env"`
	Concurrency *struct {
		Group            string `yaml:"group"`
		CancelInProgress bool   `yaml:"cancel-in-progress"`
	} `yaml:"concurrency"`
	Steps []struct {
		Uses string            `yaml:"uses"`
		Run  string            `yaml:"run"`
		With map[string]any    `yaml:"with"`
		Env  map[string]string `yaml:"env"`
	} `yaml:"steps"`
}

func readWorkflow(t *testing.T, path string) workflow {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var w workflow
	require.NoError(t, yaml.Unmarshal(raw, &w), path)
	return w
}

// triggers are the events a workflow runs on.
func (w workflow) triggers() []string {
	var out []string
	switch w.On.Kind {
	case yaml.ScalarNode:
		out = append(out, w.On.Value)
	case yaml.SequenceNode:
		for _, n := range w.On.Content {
			out = append(out, n.Value)
		}
	case yaml.MappingNode:
		for i := 0; i < len(w.On.Content); i += 2 {
			out = append(out, w.On.Content[i].Value)
		}
	}
	return out
}

// deploys tells which stacks a job changes: it runs `deploy.sh <stack> up` or `destroy`.
func (j job) deploys() []string {
	var out []string
	for _, s := range j.Steps {
		for _, stack := range []string{"dev", "prod"} {
			if regexp.MustCompile(`deploy\.sh "?` + stack + `"? (up|destroy)\b`).MatchString(s.Run) {
				out = append(out, stack)
			}
		}
	}
	return out
}

func TestActionlintAcceptsEveryWorkflow(t *testing.T) {
	linter, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{})
	require.NoError(t, err)
	var paths []string
	for _, p := range workflowFiles(t) {
		paths = append(paths, p)
	}
	errs, err := linter.LintFiles(paths, nil)
	require.NoError(t, err)
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", filepath.Base(e.Filepath), e.Line, e.Column, e.Message, e.Kind)
	}
}

func TestEveryWorkflowKeepsTheCIRules(t *testing.T) {
	for name, path := range workflowFiles(t) {
		t.Run(name, func(t *testing.T) {
			w := readWorkflow(t, path)
			assert.Equal(t, map[string]string{"contents": "read"}, w.Permissions, "least privilege: contents: read at the top, more only per job")
			assert.NotContains(t, w.triggers(), "pull_request_target", "a fork's code must never run with the repository's secrets")
			for jobName, j := range w.Jobs {
				assert.Positive(t, j.Timeout, "%s has a timeout", jobName)
				for scope, level := range j.Permissions {
					if level != "write" {
						continue
					}
					if scope == "id-token" {
						// OIDC tokens name the environment, so a cloud trusts one environment's jobs only.
						assert.NotNil(t, j.Environment, "%s: id-token: write only in a job that names its environment", jobName)
						continue
					}
					assert.Contains(t, []string{"pull-requests", "issues", "security-events"}, scope, "%s: only commenting, drift issues and code scanning may write", jobName)
				}
				for _, step := range j.Steps {
					action, _, _ := strings.Cut(step.Uses, "@")
					switch {
					case action == "actions/checkout":
						assert.Equal(t, false, step.With["persist-credentials"], "%s: checkout leaves no token in .git/config for later steps", jobName)
					case action == "aquasecurity/trivy-action" && step.With["format"] == "sarif":
						// With sarif, trivy-action drops the severity filter unless told to keep it
						// (aquasecurity/trivy-action issues 309 and 281): any finding would fail the scan.
						assert.Equal(t, true, step.With["limit-severities-for-sarif"], "%s: the scan's severity filter holds with sarif", jobName)
					}
				}
				for _, stack := range j.deploys() {
					require.NotNil(t, j.Concurrency, "%s deploys %s: one deploy per stack at a time", jobName, stack)
					assert.Contains(t, j.Concurrency.Group, stack, "%s: the concurrency group is per stack", jobName)
					assert.False(t, j.Concurrency.CancelInProgress, "%s: a running deploy is never cancelled", jobName)
					if stack == "prod" {
						assert.Equal(t, "production", j.Environment, "%s deploys prod, so its reviewers approve it", jobName)
					}
				}
			}
		})
	}
}

func TestTheWorkflowsDeployWhatTheIssueAsks(t *testing.T) {
	files := workflowFiles(t)
	deployers := map[string][]string{}
	for name, path := range files {
		for jobName, j := range readWorkflow(t, path).Jobs {
			for _, stack := range j.deploys() {
				deployers[stack] = append(deployers[stack], name+"/"+jobName)
			}
		}
	}
	assert.Equal(t, []string{"deploy.yml/dev"}, deployers["dev"], "dev is updated on a push to main, by one job")
	assert.Equal(t, []string{"deploy.yml/prod"}, deployers["prod"], "prod is updated by one job, behind approval")

	deploy := readWorkflow(t, files["deploy.yml"])
	prod := deploy.Jobs["prod"]
	require.NotEmpty(t, prod.Steps)
	var exported, updated int
	for i, s := range prod.Steps {
		if strings.Contains(s.Run, "deploy.sh prod stack export") {
			exported = i
		}
		if strings.Contains(s.Run, "deploy.sh prod up") {
			updated = i
		}
	}
	assert.Positive(t, exported, "prod's state is exported")
	assert.Less(t, exported, updated, "before the update")
	assert.Contains(t, prod.Steps[updated].Run, "--plan", "the approved job applies the plan its reviewers read")
	preview := deploy.Jobs["prod-preview"]
	assert.Equal(t, "production-plan", preview.Environment, "prod is previewed with prod's secrets, outside the approval")
	assert.Contains(t, prod.Needs, "prod-preview")
	saved := false
	for _, s := range preview.Steps {
		saved = saved || (strings.Contains(s.Run, "deploy.sh prod preview") && strings.Contains(s.Run, "--save-plan"))
	}
	assert.True(t, saved, "prod's preview saves the plan the approved job applies")

	drift := readWorkflow(t, files["drift.yml"])
	assert.Contains(t, drift.triggers(), "schedule", "drift is checked nightly")
	assert.Contains(t, drift.triggers(), "workflow_dispatch", "and by hand")
	require.Contains(t, drift.Jobs, "drift")
	assert.Equal(t, "write", drift.Jobs["drift"].Permissions["issues"], "drift opens and closes issues")
	var check string
	for _, s := range drift.Jobs["drift"].Steps {
		if strings.Contains(s.Run, "scripts/drift.sh \"") {
			check = s.Run
		}
	}
	assert.Contains(t, check, `scripts/drift.sh "$STACK"`, "the drift command the e2e suite runs, which tells drift from failure")

	pr := readWorkflow(t, files["pull-request.yml"])
	assert.Equal(t, []string{"pull_request"}, pr.triggers())
	assert.Contains(t, pr.Jobs["preview"].If, "head.repo.full_name == github.repository", "a fork's pull request gets no preview, so no secret")
	assert.Equal(t, "write", pr.Jobs["preview"].Permissions["pull-requests"], "the preview comments its diff")
	assert.Equal(t, "dev", pr.Jobs["preview"].Environment, "a branch's code runs with dev's secrets only")
	for _, s := range pr.Jobs["preview"].Steps {
		assert.NotContains(t, s.Run, "deploy.sh prod", "a pull request never runs with prod's secrets")
		if strings.Contains(s.Run, "gh pr comment") {
			assert.Contains(t, s.Run, "--edit-last --create-if-none", "one comment, edited on every push")
		}
	}
}

func TestSecretsReachOnlyTheStepsOfJobsInAnEnvironment(t *testing.T) {
	for name, path := range workflowFiles(t) {
		t.Run(name, func(t *testing.T) {
			w := readWorkflow(t, path)
			for key, value := range w.Env {
				assert.NotContains(t, value, "secrets.", "%s: a workflow-wide secret reaches every step of every job", key)
			}
			for jobName, j := range w.Jobs {
				for key, value := range j.Env {
					assert.NotContains(t, value, "secrets.", "%s: %s job-wide reaches every step, third-party actions included", jobName, key)
				}
				usesSecrets := false
				for _, step := range j.Steps {
					for _, v := range step.Env {
						usesSecrets = usesSecrets || strings.Contains(v, "secrets.")
					}
					for _, v := range step.With {
						usesSecrets = usesSecrets || strings.Contains(fmt.Sprint(v), "secrets.")
					}
				}
				if usesSecrets {
					assert.NotNil(t, j.Environment, "%s reads secrets, which live in a GitHub environment", jobName)
				}
			}
		})
	}
}

func TestTheImageScanSplitsPublicImagesFromTheApps(t *testing.T) {
	scan := readWorkflow(t, workflowFiles(t)["image-scan.yml"])
	var listed string
	for _, s := range scan.Jobs["images"].Steps {
		listed += s.Run
	}
	assert.Contains(t, listed, "image-refs -except app", "the public matrix leaves out the app, which no public registry serves")
	assert.Contains(t, listed, "image-refs -only app", "the app's images are scanned apart")
	assert.Equal(t, "registry", scan.Jobs["scan-app"].Environment, "with the registry's credentials")
}

func TestTheImageScanCoversEveryImageAStackPulls(t *testing.T) {
	for _, stack := range shippedStacks {
		t.Run(stack, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(repoRoot, "Pulumi."+stack+".yaml"))
			require.NoError(t, err)
			refs, err := stacks.ImageRefs(raw)
			require.NoError(t, err)
			var scanned []string
			for _, ref := range refs {
				scanned = append(scanned, ref)
			}
			for _, replicas := range []int{1, 2} {
				res := mustRun(t, loadStack(t, stack).with("appReplicas", fmt.Sprint(replicas)))
				for _, img := range res.OfType(imageType) {
					assert.True(t, slices.Contains(scanned, img.Inputs["name"].StringValue()), "%s is pulled with %d instance(s) and must be scanned", img.Inputs["name"].StringValue(), replicas)
				}
			}
		})
	}
}

func TestDependabotUpdatesTheModulesAndTheActions(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".github", "dependabot.yml"))
	require.NoError(t, err)
	var config struct {
		Version int `yaml:"version"`
		Updates []struct {
			Ecosystem string `yaml:"package-ecosystem"`
			Schedule  struct {
				Interval string `yaml:"interval"`
			} `yaml:"schedule"`
		} `yaml:"updates"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &config))
	assert.Equal(t, 2, config.Version)
	var ecosystems []string
	for _, u := range config.Updates {
		ecosystems = append(ecosystems, u.Ecosystem)
		assert.NotEmpty(t, u.Schedule.Interval, "%s has a schedule", u.Ecosystem)
	}
	assert.ElementsMatch(t, []string{"gomod", "github-actions"}, ecosystems)
}

// actionFiles are the workflows and the local actions: every file whose steps name actions.
func actionFiles(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot, ".github", "actions", "*", "action.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, p := range workflowFiles(t) {
		paths = append(paths, p)
	}
	return paths
}

func TestEveryThirdPartyActionIsPinnedToTheCommitOfItsTag(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "action-pins.txt"))
	require.NoError(t, err)
	verified := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if ref, tag, ok := strings.Cut(strings.TrimSpace(line), " "); ok && !strings.HasPrefix(line, "#") {
			verified[ref] = tag
		}
	}
	pinned := regexp.MustCompile(`^[^@\s]+@[0-9a-f]{40}$`)
	for _, path := range actionFiles(t) {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			for _, line := range strings.Split(string(raw), "\n") {
				uses, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- ")), "uses: ")
				if !ok || strings.HasPrefix(uses, "./") {
					continue
				}
				ref, comment, _ := strings.Cut(uses, " # ")
				assert.Regexp(t, pinned, ref, "a third-party action is pinned to a full commit SHA")
				tag, known := verified[ref]
				assert.True(t, known, "%s is not in testdata/action-pins.txt: check its SHA against its tag, then add it", ref)
				assert.Equal(t, tag, comment, "%s: the comment names the tag whose commit it pins", ref)
			}
		})
	}
}

func TestTheSetupActionsScriptsPassShellcheck(t *testing.T) {
	shellcheck, err := exec.LookPath("shellcheck")
	require.NoError(t, err, "shellcheck is needed to check the setup action's scripts: apt-get install shellcheck (.ci/run installs it)")
	for _, path := range actionFiles(t) {
		if filepath.Base(path) != "action.yml" {
			continue // actionlint runs shellcheck on the workflows' scripts
		}
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		var action struct {
			Runs struct {
				Steps []struct {
					Name string `yaml:"name"`
					Run  string `yaml:"run"`
				} `yaml:"steps"`
			} `yaml:"runs"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &action))
		for _, step := range action.Runs.Steps {
			if step.Run == "" {
				continue
			}
			t.Run(step.Name, func(t *testing.T) {
				// Expressions are GitHub's, not the shell's: stand them in as a variable.
				script := regexp.MustCompile(`\$\{\{[^}]*\}\}`).ReplaceAllString(step.Run, "$GITHUB_EXPRESSION")
				cmd := exec.Command(shellcheck, "--shell=bash", "-")
				cmd.Stdin = strings.NewReader(script)
				out, err := cmd.CombinedOutput()
				assert.NoError(t, err, "%s", out)
			})
		}
	}
}
