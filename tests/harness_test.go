// Package tests runs the real Pulumi program against Pulumi's mocks, with the shipped stack files.
package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/maricusco/infra/stacks"
)

// repoRoot is where the stack files live.
const repoRoot = ".."

// StackConfig is a stack's config as the Pulumi CLI hands it to the program: every value a
// string (objects as JSON), secrets decrypted and listed in Secrets.
type StackConfig struct {
	Name    string
	Values  map[string]string
	Secrets []string
}

// The names the program gives Docker objects with the default namePrefix: the tests' fixtures.
const prefix = "maricusco"

// The platform's networks: the edge (nginx and the app), the data services' and monitoring's.
var (
	edgeNetwork       = prefix + "-edge"
	dataNetwork       = prefix + "-data"
	monitoringNetwork = prefix + "-monitoring"
	networkNames      = []string{edgeNetwork, dataNetwork, monitoringNetwork}
)

// joined are the names of the networks a container or a swarm service joins, each with the
// aliases it answers there.
func joined(t *testing.T, r Resource) map[string][]string {
	t.Helper()
	na, ok := r.Inputs["networksAdvanced"]
	if r.Type == "docker:index/service:Service" {
		na, ok = r.Inputs["taskSpec"].ObjectValue()["networksAdvanceds"]
	}
	require.True(t, ok, "%s names its networks", r.Name)
	out := map[string][]string{}
	for _, n := range na.ArrayValue() {
		out[str(n.ObjectValue()["name"])] = strs(n.ObjectValue()["aliases"])
	}
	return out
}

// container is the Docker name of a service's container (or swarm service): <prefix>-<service>.
func container(service string) string { return prefix + "-" + service }

// fakeSecret is what a `secure:` value of a stack file decrypts to in the tests.
func fakeSecret(key string) string { return "s3cret-" + strings.ReplaceAll(key, ":", "-") + "-X9" }

// loadStack reads Pulumi.<name>.yaml as shipped.
func loadStack(t testing.TB, name string) StackConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Pulumi."+name+".yaml"))
	require.NoError(t, err)
	var doc struct {
		Config map[string]yaml.Node `yaml:"config"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc), "Pulumi.%s.yaml", name)
	sc := StackConfig{Name: name, Values: map[string]string{}}
	for key, node := range doc.Config {
		if node.Kind == yaml.MappingNode && len(node.Content) == 2 && node.Content[0].Value == "secure" {
			sc.Values[key] = fakeSecret(key)
			sc.Secrets = append(sc.Secrets, key)
			continue
		}
		if node.Kind == yaml.ScalarNode {
			sc.Values[key] = node.Value
			continue
		}
		var v any
		require.NoError(t, node.Decode(&v))
		b, err := json.Marshal(v)
		require.NoError(t, err)
		sc.Values[key] = string(b)
	}
	return withEdgeCertificate(t, sc)
}

// edgeCertificates are the tests' edge certificates, one per stack, the same for every run of it:
// two runs of one config declare the same edge.
var edgeCertificates sync.Map

type issuedEdge struct{ chain, key string }

// withEdgeCertificate gives the stack's edge a certificate for its hostname, as deploy.sh does for
// a self-signed edge and the operator for one of files, unless the stack file has one.
func withEdgeCertificate(t testing.TB, sc StackConfig) StackConfig {
	t.Helper()
	var edge map[string]any
	if raw, ok := sc.Values[stacks.Namespace+":edge"]; ok {
		require.NoError(t, json.Unmarshal([]byte(raw), &edge))
	}
	if _, ok := edge["certificate"]; ok {
		if !slices.Contains(sc.Secrets, stacks.Namespace+":"+stacks.EdgePrivateKeyKey) {
			return sc
		}
		// Its key is encrypted with the stack's passphrase, which the tests do not have: a stack
		// file after `./deploy.sh <stack> up` holds deploy.sh's self-signed pair so. The tests
		// issue their own pair for the same hostname.
		delete(edge, "certificate")
	}
	if edge == nil {
		edge = map[string]any{}
	}
	hostname, _ := edge["hostname"].(string)
	if hostname == "" {
		hostname = "localhost"
	}
	cached, ok := edgeCertificates.Load(sc.Name + "/" + hostname)
	if !ok {
		chain, key, err := stacks.NewSelfSignedEdge(sc.Name, hostname, time.Now())
		require.NoError(t, err)
		cached, _ = edgeCertificates.LoadOrStore(sc.Name+"/"+hostname, issuedEdge{chain, key})
	}
	cert := cached.(issuedEdge)
	edge["certificate"] = cert.chain
	return sc.with("edge", edge).withSecret(stacks.EdgePrivateKeyKey, cert.key)
}

// with returns a copy of the config with key (without namespace) set to value; a value that is
// not a string is stored as JSON, as the CLI passes objects.
func (s StackConfig) with(key string, value any) StackConfig {
	out := StackConfig{Name: s.Name, Values: map[string]string{}, Secrets: append([]string(nil), s.Secrets...)}
	for k, v := range s.Values {
		out.Values[k] = v
	}
	full := stacks.Namespace + ":" + key
	switch v := value.(type) {
	case nil:
		delete(out.Values, full)
	case string:
		out.Values[full] = v
	default:
		b, _ := json.Marshal(v)
		out.Values[full] = string(b)
	}
	return out
}

// withSecret sets a secret value.
func (s StackConfig) withSecret(key string, value any) StackConfig {
	out := s.with(key, value)
	out.Secrets = append(out.Secrets, stacks.Namespace+":"+key)
	return out
}

// Resource is one resource the program registered.
type Resource struct {
	URN                 string
	Type                string
	Name                string
	Custom              bool
	Inputs              resource.PropertyMap
	Provider            string
	Parent              string
	DependsOn           []string
	Protect             bool
	RetainOnDelete      bool
	DeleteBeforeReplace bool
	IgnoreChanges       []string
	// Aliases are the names the resource had before, under the same parent and type.
	Aliases []string
}

// mocks records every registered resource and answers like the providers would.
type mocks struct {
	mu        sync.Mutex
	resources []Resource
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	rpc := args.RegisterRPC
	r := Resource{Type: args.TypeToken, Name: args.Name, Custom: args.Custom, Inputs: args.Inputs, Provider: args.Provider}
	if rpc != nil {
		r.Parent, r.DependsOn = rpc.GetParent(), rpc.GetDependencies()
		r.Protect, r.RetainOnDelete, r.DeleteBeforeReplace = rpc.GetProtect(), rpc.GetRetainOnDelete(), rpc.GetDeleteBeforeReplace()
		r.IgnoreChanges = rpc.GetIgnoreChanges()
		for _, a := range rpc.GetAliases() {
			if name := a.GetSpec().GetName(); name != "" {
				r.Aliases = append(r.Aliases, name)
			}
		}
	}
	outputs := args.Inputs.Copy()
	switch args.TypeToken {
	case "docker:index/remoteImage:RemoteImage":
		outputs["imageId"] = resource.NewProperty(imageID(args.Inputs["name"].StringValue()))
	case "random:index/randomPassword:RandomPassword":
		outputs["result"] = resource.MakeSecret(resource.NewProperty("generated-" + args.Name))
	}
	m.mu.Lock()
	m.resources = append(m.resources, r)
	m.mu.Unlock()
	return args.Name + "-id", outputs, nil
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return args.Args, nil
}

// imageID is the mocked ID of a pulled image.
func imageID(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Result is what one run of the program registered and exported.
type Result struct {
	Resources []Resource
	Exports   map[string]Export
}

// Export is a resolved stack output.
type Export struct {
	Value  any
	Secret bool
}

// roomyDataNode is the one node of the mocked swarm: labelled, with room for every service.
// roomyMachine is the mocked engine's host: room for every shipped stack's limits.
var roomyMachine = stacks.Machine{CPUs: 16e9, Memory: 64 << 30}

var roomyDataNode = stacks.SwarmNode{Name: "node-1", Data: true, CPUs: 16e9, Memory: 64 << 30}

// engineAPI is the Docker Engine API version the mocked engine answers: Docker 26's.
const engineAPI = "1.45"

// asCLI hands the config to the program as the Pulumi CLI does: in RunInfo and, whole, in the
// PULUMI_CONFIG environment variable.
func asCLI(t testing.TB, sc StackConfig) func(*pulumi.RunInfo) {
	b, err := json.Marshal(sc.Values)
	require.NoError(t, err)
	t.Setenv(pulumi.EnvConfig, string(b))
	return func(info *pulumi.RunInfo) {
		info.Config = sc.Values
		info.ConfigSecretKeys = sc.Secrets
	}
}

// run runs the real program (stacks.Run) with the given config under Pulumi's mocks, on an
// engine that answers API version engineAPI unless an option says otherwise.
func run(t testing.TB, sc StackConfig, opts ...stacks.Option) (*Result, error) {
	t.Helper()
	opts = append([]stacks.Option{
		stacks.WithEngineAPIVersion(func(string) (string, error) { return engineAPI, nil }),
		stacks.WithEngineMachine(func(string) (stacks.Machine, error) { return roomyMachine, nil }),
		stacks.WithSwarmNodes(func(string) ([]stacks.SwarmNode, error) { return []stacks.SwarmNode{roomyDataNode}, nil }),
		stacks.WithEngineNetwork(func(string, string) (stacks.NetworkState, bool, error) { return stacks.NetworkState{}, false, nil }),
		// A deployed stack, whose app serves: changes roll one instance at a time.
		stacks.WithEngineRunning(func(string, string) (bool, error) { return true, nil }),
		// Nothing of the stack on the engine yet; every healthcheck passes at once.
		stacks.WithEngineContainers(func(string, string) (map[string]string, error) { return nil, nil }),
		stacks.WithEngineHealthchecks(func(string, string, []string, time.Duration) (bool, error) { return true, nil },
			func(string, string) (stacks.Health, error) { return stacks.Health{Status: "healthy"}, nil }),
	}, opts...)
	m := &mocks{}
	var exports map[string]pulumi.Input
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		if err := stacks.RunWith(ctx, opts...); err != nil {
			return err
		}
		exports = ctx.GetCurrentExportMap()
		return nil
	}, pulumi.WithMocks(stacks.Namespace, sc.Name, m), asCLI(t, sc))
	res := &Result{Resources: m.resources, Exports: map[string]Export{}}
	sort.Slice(res.Resources, func(i, j int) bool {
		return res.Resources[i].Type+res.Resources[i].Name < res.Resources[j].Type+res.Resources[j].Name
	})
	if err != nil {
		return res, err // an export of a failed program may never resolve
	}
	for name, in := range exports {
		res.Exports[name] = await(t, in)
	}
	return res, err
}

// mustRun runs the program and fails the test on error.
func mustRun(t testing.TB, sc StackConfig, opts ...stacks.Option) *Result {
	t.Helper()
	res, err := run(t, sc, opts...)
	require.NoError(t, err)
	return res
}

func await(t testing.TB, in pulumi.Input) Export {
	t.Helper()
	out := pulumi.ToOutput(in)
	ch := make(chan any, 1)
	out.ApplyT(func(v any) any { ch <- v; return v })
	return Export{Value: <-ch, Secret: pulumi.IsSecret(out)}
}

// Containers returns the Docker containers by container name.
func (r *Result) Containers() map[string]Resource {
	out := map[string]Resource{}
	for _, res := range r.Resources {
		if res.Type == "docker:index/container:Container" {
			out[res.Inputs["name"].StringValue()] = res
		}
	}
	return out
}

// Services returns the swarm services by service name.
func (r *Result) Services() map[string]Resource {
	out := map[string]Resource{}
	for _, res := range r.OfType("docker:index/service:Service") {
		out[res.Inputs["name"].StringValue()] = res
	}
	return out
}

// Service returns the swarm service with the given Docker name.
func (r *Result) Service(t testing.TB, name string) Resource {
	t.Helper()
	s, ok := r.Services()[name]
	require.True(t, ok, "no service named %s; have %v", name, keys(r.Services()))
	return s
}

// Container returns the container with the given Docker name.
func (r *Result) Container(t testing.TB, name string) Resource {
	t.Helper()
	c, ok := r.Containers()[name]
	require.True(t, ok, "no container named %s; have %v", name, keys(r.Containers()))
	return c
}

// OfType returns the resources of one type.
func (r *Result) OfType(typ string) []Resource {
	var out []Resource
	for _, res := range r.Resources {
		if res.Type == typ {
			out = append(out, res)
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// str reads a string input, looking through secrets.
func str(v resource.PropertyValue) string {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if v.IsString() {
		return v.StringValue()
	}
	return fmt.Sprint(v.V)
}

// env returns a container's environment as a map, and the names whose entry is secret.
func env(c Resource) (map[string]string, map[string]bool) {
	vals, secret := map[string]string{}, map[string]bool{}
	if !c.Inputs.HasValue("envs") {
		return vals, secret
	}
	for _, e := range c.Inputs["envs"].ArrayValue() {
		k, v, _ := strings.Cut(str(e), "=")
		vals[k] = v
		secret[k] = e.IsSecret()
	}
	return vals, secret
}

// uploads returns a container's uploaded files: path to content, and whether each is secret.
func uploads(c Resource) (map[string]string, map[string]bool) {
	files, secret := map[string]string{}, map[string]bool{}
	if !c.Inputs.HasValue("uploads") {
		return files, secret
	}
	for _, u := range c.Inputs["uploads"].ArrayValue() {
		obj := u.ObjectValue()
		path := str(obj["file"])
		files[path] = str(obj["content"])
		secret[path] = obj["content"].IsSecret()
	}
	return files, secret
}

// strings reads a string array input.
func strs(v resource.PropertyValue) []string {
	var out []string
	for _, e := range arr(v) {
		out = append(out, str(e))
	}
	return out
}

// defaultKey is a key's default as the program declares it.
func defaultKey(t testing.TB, name string) any {
	t.Helper()
	for _, k := range stacks.Keys() {
		if k.Name == name {
			return k.Default
		}
	}
	t.Fatalf("no config key %s", name)
	return nil
}

// AppInstances returns the application's containers, by name.
func (r *Result) AppInstances() []Resource {
	var out []Resource
	for _, name := range keys(r.Containers()) {
		if name == container("app") || strings.HasPrefix(name, "maricusco-app-") {
			out = append(out, r.Containers()[name])
		}
	}
	return out
}

// key identifies a resource across runs as its URN does: parent, type and name.
func (r Resource) key() string { return r.Parent + "/" + r.Type + "::" + r.Name }

// Plan is what `pulumi up` would do going from one run's resources to another's, by URN.
type Plan struct {
	Added, Removed, Changed []string
}

// planDiff compares two runs as the engine would: resources added and removed by URN (a new name
// with an alias of the old one is the same resource), and resources whose inputs or options differ.
func planDiff(before, after *Result) Plan {
	old := map[string]Resource{}
	for _, r := range before.Resources {
		old[r.key()] = r
	}
	var p Plan
	seen := map[string]bool{}
	for _, r := range after.Resources {
		k := r.key()
		o, ok := old[k]
		for _, alias := range r.Aliases {
			if !ok {
				k = r.Parent + "/" + r.Type + "::" + alias
				o, ok = old[k]
			}
		}
		seen[k] = true
		switch {
		case !ok:
			p.Added = append(p.Added, r.Type+"::"+r.Name)
		case !sameResource(o, r):
			p.Changed = append(p.Changed, r.Type+"::"+r.Name)
		}
	}
	for k, r := range old {
		if !seen[k] {
			p.Removed = append(p.Removed, r.Type+"::"+r.Name)
		}
	}
	sort.Strings(p.Added)
	sort.Strings(p.Removed)
	sort.Strings(p.Changed)
	return p
}

// sameResource tells whether the engine would leave b as a was. Dependencies are not compared:
// the engine records a new dependsOn without updating the resource.
func sameResource(a, b Resource) bool {
	return a.Inputs.DeepEquals(b.Inputs) && a.Provider == b.Provider && a.Protect == b.Protect &&
		a.RetainOnDelete == b.RetainOnDelete && a.DeleteBeforeReplace == b.DeleteBeforeReplace
}

// loadConfig runs only the program's config loading under the mocks, for its warnings.
func loadConfig(t testing.TB, sc StackConfig) (*stacks.Config, error) {
	t.Helper()
	var cfg *stacks.Config
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		var err error
		cfg, err = stacks.Load(ctx)
		return err
	}, pulumi.WithMocks(stacks.Namespace, sc.Name, &mocks{}), asCLI(t, sc))
	return cfg, err
}
