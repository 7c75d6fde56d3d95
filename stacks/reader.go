package stacks

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/maricusco/infra/components"
)

// Namespace is the config namespace of this project's keys (`maricusco:<key>`).
const Namespace = "maricusco"

// Key describes one config key: what Pulumi.yaml declares for it and docs/configuration.md documents.
type Key struct {
	// Name is the key without its namespace.
	Name string
	// Type is the Pulumi.yaml type: string, integer or boolean; "object" for a structured key,
	// which Pulumi.yaml cannot declare.
	Type string
	// Default is the value when the stack does not set the key (nil: none).
	Default any
	// Description says what the key means.
	Description string
	// Secret keys must be set with `pulumi config set --secret`.
	Secret bool
}

// Problem is one invalid config value.
type Problem struct {
	Key     string
	Message string
}

func (p Problem) String() string { return Namespace + ":" + p.Key + ": " + p.Message }

// ConfigError lists every problem found in a stack's config.
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid stack configuration (%d problem(s)); nothing was deployed:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.String())
	}
	return b.String()
}

// source is where config values come from: the Pulumi context, or nothing (for listing the keys).
type source struct {
	get      func(key string) (string, bool)
	isSecret func(key string) bool
}

// reader reads typed keys, records each key it is asked for, and collects every problem.
type reader struct {
	src      source
	keys     []Key
	problems []Problem
}

func (r *reader) fail(key, format string, args ...any) {
	r.problems = append(r.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// add records problems a target found, as the reader's own.
func (r *reader) add(problems []components.Problem) {
	for _, p := range problems {
		r.fail(p.Key, "%s", p.Message)
	}
}

// has tells whether a problem is recorded for key already (a value that did not parse), so that
// a rule on the value does not report it twice.
func (r *reader) has(key string) bool {
	for _, p := range r.problems {
		if p.Key == key {
			return true
		}
	}
	return false
}

// declare records k and returns the stack's value for it, if any. A key that is not a secret but
// was set with --secret is refused, and its value withheld from every later message: the program
// would put it, in plaintext, where secrets never go (container settings, outputs).
func (r *reader) declare(k Key) (string, bool) {
	r.keys = append(r.keys, k)
	if r.src.get == nil {
		return "", false
	}
	v, ok := r.src.get(Namespace + ":" + k.Name)
	if ok && !k.Secret && r.src.isSecret(Namespace+":"+k.Name) {
		r.fail(k.Name, "is set with --secret, but is no secret: its value would be shown in plaintext where the program puts it; set it again without --secret (for a secret of the app's, use appSecretEnv)")
		return "", false
	}
	return v, ok
}

// str reads a string key; a value of more than one line, or with other control characters, is
// refused: it would end a line of the file or command it goes into.
func (r *reader) str(name, def, desc string) string {
	v, ok := r.declare(Key{Name: name, Type: "string", Default: def, Description: desc})
	if !ok {
		return def
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		r.fail(name, "holds a control character (a newline?); write the value on one line")
		return def
	}
	return v
}

func (r *reader) integer(name string, def int, desc string) int {
	v, ok := r.declare(Key{Name: name, Type: "integer", Default: def, Description: desc})
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		r.fail(name, "%q is not a whole number", v)
		return def
	}
	return n
}

func (r *reader) boolean(name string, def bool, desc string) bool {
	v, ok := r.declare(Key{Name: name, Type: "boolean", Default: def, Description: desc})
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.fail(name, "%q is not a boolean; write true or false", v)
		return def
	}
	return b
}

// list reads an array of strings (JSON from the Pulumi CLI); its default is empty.
func (r *reader) list(name, desc string) []string {
	v, ok := r.declare(Key{Name: name, Type: "array", Default: []string{}, Description: desc})
	if !ok || strings.TrimSpace(v) == "" {
		return nil
	}
	var out []string
	if err := yaml.Unmarshal([]byte(v), &out); err != nil {
		r.fail(name, "%q is not a list of names; write e.g. [\"published-ports\"]", v)
		return nil
	}
	return out
}

// secret returns the key's value and whether it is set; a value stored in plaintext is refused.
func (r *reader) secret(name, desc string) (string, bool) {
	v, ok := r.declare(Key{Name: name, Type: "string", Description: desc, Secret: true})
	if !ok || v == "" {
		return "", false
	}
	if !r.src.isSecret(Namespace + ":" + name) {
		r.fail(name, "is stored in plaintext; remove it from the stack file and run `pulumi config set --secret %s <value>`", name)
		return "", false
	}
	return v, true
}

// secretInto reads a secret key into the config's secrets when the stack sets it.
func (r *reader) secretInto(c *Config, name, desc string) {
	if v, ok := r.secret(name, desc); ok {
		c.Secrets[name] = v
	}
}

// object decodes a structured key (JSON from the Pulumi CLI, which is also YAML) into out,
// refusing fields out does not have. It reports whether the key is set.
func (r *reader) object(name, desc string, out any, secret bool) bool {
	v, ok := r.declare(Key{Name: name, Type: "object", Description: desc, Secret: secret})
	if !ok {
		return false
	}
	dec := yaml.NewDecoder(bytes.NewReader([]byte(v)))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		if secret {
			// The decoder's message quotes the value; a secret's must not reach the output.
			r.fail(name, "cannot be read as NAME: value entries (details withheld: the value is secret)")
		} else {
			r.fail(name, "cannot be read: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return false
	}
	if secret && !r.src.isSecret(Namespace+":"+name) {
		r.fail(name, "is stored in plaintext; set each entry with `pulumi config set --secret --path '%s.<NAME>' <value>`", name)
		return false
	}
	return true
}

func (r *reader) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	sort.SliceStable(r.problems, func(i, j int) bool { return r.problems[i].Key < r.problems[j].Key })
	return &ConfigError{Problems: r.problems}
}
