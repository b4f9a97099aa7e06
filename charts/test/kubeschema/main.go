// Command kubeschema turns the Kubernetes OpenAPI v2 document (swagger.json, as
// shipped in the k8s.io/kubernetes module) and CustomResourceDefinitions into
// the strict JSON Schemas kubeconform reads offline, one file per kind, named as
// kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json template expects
// (deployment-apps-v1.json, service-v1.json, servicemonitor-monitoring-v1.json).
//
// "Strict" means what kubeconform's -strict schemas mean: every object that
// lists its properties rejects any other property, so a misspelt or misplaced
// field fails validation instead of being dropped by the API server.
//
// Usage:
//
//	go run ./kubeschema -swagger swagger.json [-crd crd.json ...] -out DIR
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kubeschema:", err)
		os.Exit(1)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func run(args []string) error {
	fs := flag.NewFlagSet("kubeschema", flag.ContinueOnError)
	swagger := fs.String("swagger", "", "Kubernetes OpenAPI v2 document (swagger.json)")
	out := fs.String("out", "", "directory to write the schemas to")
	var crds listFlag
	fs.Var(&crds, "crd", "CustomResourceDefinition as JSON (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *swagger == "" || *out == "" {
		return errors.New("-swagger and -out are required")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	n, err := fromSwagger(*swagger, *out)
	if err != nil {
		return fmt.Errorf("%s: %w", *swagger, err)
	}
	for _, crd := range crds {
		m, err := fromCRD(crd, *out)
		if err != nil {
			return fmt.Errorf("%s: %w", crd, err)
		}
		n += m
	}
	fmt.Printf("kubeschema: wrote %d strict schemas to %s\n", n, *out)
	return nil
}

// fileName is kubeconform's name for a kind's schema: the kind, the first label
// of the API group (none for the core group) and the version, lower case.
func fileName(group, version, kind string) string {
	name := strings.ToLower(kind)
	if group != "" {
		name += "-" + strings.ToLower(strings.Split(group, ".")[0])
	}
	return name + "-" + strings.ToLower(version) + ".json"
}

func fromSwagger(path, out string) (int, error) {
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := readJSON(path, &doc); err != nil {
		return 0, err
	}
	if len(doc.Definitions) == 0 {
		return 0, errors.New("no definitions")
	}
	defs := make(map[string]any, len(doc.Definitions))
	for name, def := range doc.Definitions {
		defs[name] = convertDefinition(name, def)
	}
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	written := 0
	for _, name := range names {
		gvks, _ := doc.Definitions[name]["x-kubernetes-group-version-kind"].([]any)
		if len(gvks) != 1 {
			continue // not a top-level kind, or a shared type such as DeleteOptions
		}
		gvk, _ := gvks[0].(map[string]any)
		group, _ := gvk["group"].(string)
		version, _ := gvk["version"].(string)
		kind, _ := gvk["kind"].(string)
		if version == "" || kind == "" {
			continue
		}
		root := map[string]any{}
		for k, v := range defs[name].(map[string]any) {
			root[k] = v
		}
		// The root object itself is never null.
		root["type"] = "object"
		used := map[string]any{}
		collectRefs(root, defs, used)
		if len(used) > 0 {
			root["definitions"] = used
		}
		if err := writeJSON(filepath.Join(out, fileName(group, version, kind)), root); err != nil {
			return written, err
		}
		written++
	}
	if written == 0 {
		return 0, errors.New("no kinds found (x-kubernetes-group-version-kind)")
	}
	return written, nil
}

// convertDefinition makes one swagger definition strict and JSON-Schema
// friendly.
func convertDefinition(name string, def map[string]any) any {
	switch name {
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	}
	return strictify(def, true)
}

// strictify returns a copy of a schema node in which every object with listed
// properties forbids others, and (as in kubeconform's published schemas) a
// typed value may also be null, which the API server treats as absent.
func strictify(node any, nullable bool) any {
	switch n := node.(type) {
	case map[string]any:
		out := make(map[string]any, len(n)+1)
		for k, v := range n {
			switch k {
			case "properties":
				props := map[string]any{}
				for pk, pv := range v.(map[string]any) {
					props[pk] = strictify(pv, true)
				}
				out[k] = props
			case "enum", "required", "x-kubernetes-group-version-kind", "x-kubernetes-list-map-keys":
				out[k] = v
			default:
				out[k] = strictify(v, nullable)
			}
		}
		if f, ok := out["format"].(string); ok && f == "int-or-string" {
			delete(out, "format")
			delete(out, "type")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		if n["x-kubernetes-int-or-string"] == true {
			delete(out, "type")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		if _, ok := n["properties"]; ok {
			if _, set := n["additionalProperties"]; !set && n["x-kubernetes-preserve-unknown-fields"] != true {
				out["additionalProperties"] = false
			}
		}
		if t, ok := out["type"].(string); ok && (nullable || n["nullable"] == true) {
			out["type"] = []any{t, "null"}
		}
		return out
	case []any:
		out := make([]any, len(n))
		for i, v := range n {
			out[i] = strictify(v, nullable)
		}
		return out
	default:
		return node
	}
}

// collectRefs adds every definition node refers to, transitively, to used.
func collectRefs(node any, defs map[string]any, used map[string]any) {
	switch n := node.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			if _, seen := used[name]; !seen {
				def, ok := defs[name]
				if !ok {
					panic("unresolved $ref " + ref)
				}
				used[name] = def
				collectRefs(def, defs, used)
			}
		}
		for k, v := range n {
			if k == "definitions" {
				continue
			}
			collectRefs(v, defs, used)
		}
	case []any:
		for _, v := range n {
			collectRefs(v, defs, used)
		}
	}
}

func fromCRD(path, out string) (int, error) {
	var crd struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Group string `json:"group"`
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Served bool   `json:"served"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := readJSON(path, &crd); err != nil {
		return 0, err
	}
	if crd.Kind != "CustomResourceDefinition" || crd.APIVersion != "apiextensions.k8s.io/v1" {
		return 0, fmt.Errorf("not an apiextensions.k8s.io/v1 CustomResourceDefinition (got %s %s)", crd.APIVersion, crd.Kind)
	}
	written := 0
	for _, v := range crd.Spec.Versions {
		if !v.Served || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		root := strictify(v.Schema.OpenAPIV3Schema, false).(map[string]any)
		if err := writeJSON(filepath.Join(out, fileName(crd.Spec.Group, v.Name, crd.Spec.Names.Kind)), root); err != nil {
			return written, err
		}
		written++
	}
	if written == 0 {
		return 0, errors.New("no served version with a schema")
	}
	return written, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
