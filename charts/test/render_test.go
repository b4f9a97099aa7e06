package charttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "../postern"

// kubeVersion is the Kubernetes version the charts are rendered for; .ci/deploy
// passes the version of the OpenAPI document it validates against.
func kubeVersion() string {
	if v := os.Getenv("KUBE_VERSION"); v != "" {
		return v
	}
	return "1.37.2"
}

// manifest is one rendered object: its identity and its JSON.
type manifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Source string          `json:"-"`
	JSON   json.RawMessage `json:"-"`
}

// rendering is what helm template printed, split into objects.
type rendering []manifest

// helm runs the helm binary and returns its stdout, or an error carrying
// stderr.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("helm")
	if err != nil {
		t.Fatalf("helm is not on PATH (.ci/deploy installs it): %v", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// render renders chart with the given extra helm template arguments and fails
// the test if that fails.
func render(t *testing.T, chart string, args ...string) rendering {
	t.Helper()
	out, err := helm(t, append([]string{"template", "test", chart, "--kube-version", kubeVersion()}, args...)...)
	if err != nil {
		t.Fatalf("helm template %s %v: %v", chart, args, err)
	}
	return parse(t, out)
}

// renderError renders and returns the error helm reported; it fails the test
// if rendering succeeded.
func renderError(t *testing.T, args ...string) string {
	t.Helper()
	_, err := helm(t, append([]string{"template", "test", chartDir, "--kube-version", kubeVersion()}, args...)...)
	if err == nil {
		t.Fatalf("helm template %v: succeeded, want an error", args)
	}
	return err.Error()
}

var sourceComment = regexp.MustCompile(`(?m)^# Source: (.*)$`)

// parse splits helm's output into documents and decodes each strictly
// (duplicate keys are an error).
func parse(t *testing.T, out string) rendering {
	t.Helper()
	var r rendering
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(out, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		source := ""
		if m := sourceComment.FindStringSubmatch(doc); m != nil {
			source = m[1]
		}
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			t.Fatalf("%s: not valid YAML: %v\n%s", source, err, doc)
		}
		if string(js) == "null" {
			continue
		}
		var m manifest
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		m.Source, m.JSON = source, js
		r = append(r, m)
	}
	return r
}

// find returns the objects of one kind.
func (r rendering) find(kind string) []manifest {
	var out []manifest
	for _, m := range r {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// one returns the only object of kind, decoded into v with unknown fields
// rejected; it fails the test unless there is exactly one.
func (r rendering) one(t *testing.T, kind string, v any) manifest {
	t.Helper()
	ms := r.find(kind)
	if len(ms) != 1 {
		t.Fatalf("rendered %d %s objects, want 1", len(ms), kind)
	}
	if v != nil {
		decodeStrict(t, ms[0], v)
	}
	return ms[0]
}

func decodeStrict(t *testing.T, m manifest, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(m.JSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s %s: does not decode into %T: %v", m.Kind, m.Metadata.Name, v, err)
	}
}

func (r rendering) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	r.one(t, "Deployment", &d)
	return &d
}

func (r rendering) services(t *testing.T) map[string]*corev1.Service {
	t.Helper()
	out := map[string]*corev1.Service{}
	for _, m := range r.find("Service") {
		var s corev1.Service
		decodeStrict(t, m, &s)
		out[s.Name] = &s
	}
	return out
}

func (r rendering) networkPolicy(t *testing.T) *networkingv1.NetworkPolicy {
	t.Helper()
	var np networkingv1.NetworkPolicy
	r.one(t, "NetworkPolicy", &np)
	return &np
}

func (r rendering) pdb(t *testing.T) *policyv1.PodDisruptionBudget {
	t.Helper()
	var pdb policyv1.PodDisruptionBudget
	r.one(t, "PodDisruptionBudget", &pdb)
	return &pdb
}

// ciValueFiles lists the chart's ci/*-values.yaml cases.
func ciValueFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci/*-values.yaml in %s: %v", chartDir, err)
	}
	return files
}

// appVersion reads appVersion from the chart's Chart.yaml.
func appVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.AppVersion == "" {
		t.Fatal("Chart.yaml has no appVersion")
	}
	return meta.AppVersion
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
