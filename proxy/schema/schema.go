package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/postern-dev/postern/proxy/strictjson"
)

//go:embed *.json
var builtin embed.FS

// ErrViolation is returned (wrapped) when a document does not match its schema.
var ErrViolation = errors.New("schema violation")

// maxDetails bounds how many failing fields a violation names.
const maxDetails = 3

// Set is the compiled schemas, keyed by event type. It is safe for
// concurrent use.
type Set struct {
	schemas map[string]compiled
}

// compiled is one event type's schema: the library's, and the fast path's
// when the schema only uses keywords the fast path implements.
type compiled struct {
	name string // the event type
	lib  *jsonschema.Schema
	fast *node // nil: the library always runs
}

// Builtin returns the embedded schema set (REFERRAL_CREATED).
func Builtin() (*Set, error) {
	return compile(builtin, "file:///postern/builtin/")
}

// Load compiles every <EVENT_TYPE>.json file in dir. An empty dir means the
// built-in set. A schema that does not compile is an error naming the file.
func Load(dir string) (*Set, error) {
	if dir == "" {
		return Builtin()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%q is not a readable directory", dir)
	}
	return compile(os.DirFS(abs), "file://"+filepath.ToSlash(abs)+"/")
}

func compile(fsys fs.FS, base string) (*Set, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(names, func(n string) bool { return !strings.HasPrefix(n, "_") }) {
		return nil, fmt.Errorf("no <EVENT_TYPE>.json files in %s", base)
	}
	sort.Strings(names)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	// compileFast mirrors this configuration: change both together.
	//
	// Every file is added first so that schemas can $ref each other.
	docs := make(map[string]any, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: not JSON: %w", name, err)
		}
		if err := c.AddResource(base+name, doc); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		docs[name] = doc
	}
	s := &Set{schemas: make(map[string]compiled, len(names))}
	for _, name := range names {
		sch, err := c.Compile(base + name)
		if err != nil {
			return nil, fmt.Errorf("%s: does not compile: %w", name, err)
		}
		if strings.HasPrefix(name, "_") {
			continue // shared definitions for $ref, not an event type
		}
		t := strings.TrimSuffix(name, ".json")
		s.schemas[t] = compiled{name: t, lib: sch, fast: compileFast(docs[name])}
	}
	return s, nil
}

// EventTypes returns the event types that have a schema, sorted.
func (s *Set) EventTypes() []string {
	out := make([]string, 0, len(s.schemas))
	for t := range s.schemas {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Validate checks the document d holds (its root at index 0; d must hold a
// parsed document) against the schema of eventType. known is false when
// there is no schema for eventType. A violation wraps ErrViolation and names
// the failing fields.
//
// name is eventType as a string of its own: the set's copy of the name for
// a known type, otherwise a copy. A name read out of a body shares the
// body's memory, which its owner may reuse.
//
// A fast validator compiled with the schema answers first, on d itself,
// when it can tell for certain that the document is valid; otherwise the
// library decides on the value tree d.Value(0) builds, and words the
// violation.
func (s *Set) Validate(eventType string, d *strictjson.Doc) (name string, known bool, err error) {
	sch, ok := s.schemas[eventType]
	if !ok {
		return strings.Clone(eventType), false, nil
	}
	if sch.fast != nil && sch.fast.check(d, 0) == valid {
		return sch.name, true, nil
	}
	v := d.Value(0)
	if err := libValidate(sch.lib, v); err != nil {
		var ve *jsonschema.ValidationError
		switch {
		case errors.As(err, &ve):
			return sch.name, true, fmt.Errorf("%w: %s", ErrViolation, describe(ve))
		case errors.Is(err, errUncheckable):
			if at, ok := uncheckableAt(v, nil); ok {
				return sch.name, true, fmt.Errorf("%w: %s: %v", ErrViolation, pointer(at), err)
			}
		}
		return sch.name, true, fmt.Errorf("%w: %v", ErrViolation, err)
	}
	return sch.name, true, nil
}

// errUncheckable stands for a panic inside the library: jsonschema/v6
// dereferences nil when a number such as 1e2000000 meets minimum, maximum or
// multipleOf. A document the library cannot check is not known to be valid.
var errUncheckable = errors.New("a number is too large or too small for the schema to check")

// uncheckableAt finds the first number in v, under the tokens of at, that
// the library cannot hold (big.Rat, which it parses numbers into, refuses
// exponents past a million), for the violation's detail.
func uncheckableAt(v any, at []string) ([]string, bool) {
	switch v := v.(type) {
	case json.Number:
		if _, ok := new(big.Rat).SetString(string(v)); !ok {
			return at, true
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := uncheckableAt(v[k], append(at, k)); ok {
				return p, true
			}
		}
	case []any:
		for i, e := range v {
			if p, ok := uncheckableAt(e, append(at, strconv.Itoa(i))); ok {
				return p, true
			}
		}
	}
	return nil, false
}

func libValidate(sch *jsonschema.Schema, doc any) (err error) {
	defer func() {
		if recover() != nil {
			err = errUncheckable
		}
	}()
	return sch.Validate(doc)
}

// describe names the failing fields: the leaves of the error tree.
func describe(ve *jsonschema.ValidationError) string {
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(leaves) == maxDetails {
			return
		}
		if len(e.Causes) == 0 {
			leaves = append(leaves, pointer(e.InstanceLocation)+": "+leafMessage(e))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return strings.Join(leaves, "; ")
}

// leafMessage is the library's message without its "at '<pointer>': " prefix.
func leafMessage(e *jsonschema.ValidationError) string {
	msg := e.Error()
	if _, after, ok := strings.Cut(msg, "': "); ok && strings.HasPrefix(msg, "at '") {
		return after
	}
	return msg
}

func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}
