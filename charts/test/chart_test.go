package charttest

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ciSecretName is the Secret every ci/*-values.yaml case names.
const ciSecretName = "referrals-webhook-keys"

// ciCase is what one ci/*-values.yaml file must render.
type ciCase struct {
	sidecarOnly bool // mode "sidecar": no workload of its own
	native      bool // postern is an init container with restartPolicy Always
	secretsFile bool // keys mounted as a file (else from an env var)
	schemas     bool // a chart-made schemas ConfigMap is mounted
	monitoring  bool // ServiceMonitor, NetworkPolicy, PodDisruptionBudget
	otel        bool // OTEL_* variables passed through
}

var ciCases = map[string]ciCase{
	"native-values.yaml":            {native: true},
	"classic-values.yaml":           {native: false, secretsFile: true},
	"secrets-file-values.yaml":      {native: true, secretsFile: true}, // mode auto, rendered for >= 1.29
	"schemas-configmap-values.yaml": {native: true, secretsFile: true, schemas: true},
	"monitoring-values.yaml":        {native: true, secretsFile: true, monitoring: true},
	"otel-values.yaml":              {native: true, secretsFile: true, otel: true},
	"sidecar-mode-values.yaml":      {sidecarOnly: true, schemas: true},
}

func TestCIValues(t *testing.T) {
	for _, file := range ciValueFiles(t) {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			want, ok := ciCases[name]
			if !ok {
				t.Fatalf("%s has no expectations in ciCases; add them", name)
			}
			r := render(t, chartDir, "-f", file)
			checkMetadata(t, r)
			if got := len(r.find("ConfigMap")); (got == 1) != want.schemas {
				t.Errorf("rendered %d ConfigMaps, want schemas ConfigMap: %v", got, want.schemas)
			}
			if want.sidecarOnly {
				for _, kind := range []string{"Deployment", "Service", "ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget"} {
					if n := len(r.find(kind)); n != 0 {
						t.Errorf("mode sidecar rendered %d %s objects, want none", n, kind)
					}
				}
				return
			}
			d := r.deployment(t)
			spec := &d.Spec.Template.Spec
			p := checkSidecar(t, spec, want.native)
			checkSecretReference(t, spec, p, ciSecretName, want.secretsFile)
			checkApp(t, spec, p)
			checkService(t, r.services(t)[d.Name], d, p)

			if want.schemas {
				checkSchemasMounted(t, r, d, p)
			}
			if want.monitoring {
				checkMonitoring(t, r, d, p)
			} else {
				for _, kind := range []string{"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget"} {
					if n := len(r.find(kind)); n != 0 {
						t.Errorf("rendered %d %s objects without asking", n, kind)
					}
				}
			}
			if want.otel {
				for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER_ARG"} {
					if envValue(p.container, v) == "" {
						t.Errorf("postern env has no %s", v)
					}
				}
			}
		})
	}
}

// checkMetadata: standard labels on every object, and no namespace (helm's
// --namespace decides it).
func checkMetadata(t *testing.T, r rendering) {
	t.Helper()
	if len(r) == 0 {
		t.Fatal("rendered nothing")
	}
	for _, m := range r {
		if m.Metadata.Namespace != "" {
			t.Errorf("%s %s: metadata.namespace is %q, want none", m.Kind, m.Metadata.Name, m.Metadata.Namespace)
		}
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if m.Metadata.Labels[l] == "" {
				t.Errorf("%s %s: no %s label", m.Kind, m.Metadata.Name, l)
			}
		}
	}
}

// postern is the postern container as found in a pod, with the ports it
// listens on according to its own environment.
type postern struct {
	container   *corev1.Container
	webhookPort int32
	adminPort   int32
	upstream    int32 // the app's port on 127.0.0.1
}

// checkSidecar finds the one postern container, checks where it is, its
// probes, ports and security context, and returns it.
func checkSidecar(t *testing.T, spec *corev1.PodSpec, wantNative bool) postern {
	t.Helper()
	var found []*corev1.Container
	inInit := false
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == "postern" {
			found, inInit = append(found, &spec.InitContainers[i]), true
		}
	}
	for i := range spec.Containers {
		if spec.Containers[i].Name == "postern" {
			found = append(found, &spec.Containers[i])
		}
	}
	if len(found) != 1 {
		t.Fatalf("found %d postern containers, want 1", len(found))
	}
	c := found[0]
	always := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
	if wantNative && (!inInit || !always) {
		t.Errorf("native mode: postern in initContainers %v with restartPolicy Always %v, want both", inInit, always)
	}
	if !wantNative && (inInit || c.RestartPolicy != nil) {
		t.Errorf("classic mode: postern in initContainers %v, restartPolicy %v; want a regular container without restartPolicy", inInit, c.RestartPolicy)
	}

	p := postern{
		container:   c,
		webhookPort: addrPort(t, envValue(c, "POSTERN_LISTEN_ADDR")),
		adminPort:   addrPort(t, envValue(c, "POSTERN_ADMIN_ADDR")),
	}
	u, err := url.Parse(envValue(c, "POSTERN_UPSTREAM_URL"))
	if err != nil || u.Hostname() != "127.0.0.1" {
		t.Errorf("POSTERN_UPSTREAM_URL = %q, want http://127.0.0.1:<port>", envValue(c, "POSTERN_UPSTREAM_URL"))
	} else {
		p.upstream = addrPort(t, u.Host)
	}
	if p.upstream == p.webhookPort || p.upstream == p.adminPort {
		t.Errorf("the app's port %d is one of postern's (%d, %d)", p.upstream, p.webhookPort, p.adminPort)
	}
	if !hasContainerPort(c, p.webhookPort) || !hasContainerPort(c, p.adminPort) {
		t.Errorf("postern declares ports %v, want %d and %d", c.Ports, p.webhookPort, p.adminPort)
	}

	for _, probe := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"startupProbe", c.StartupProbe, "/healthz"},
	} {
		if probe.probe == nil || probe.probe.HTTPGet == nil {
			t.Errorf("%s: %+v, want an httpGet probe", probe.name, probe.probe)
			continue
		}
		get := probe.probe.HTTPGet
		if get.Path != probe.path {
			t.Errorf("%s path %q, want %q", probe.name, get.Path, probe.path)
		}
		if got := resolvePort(t, c, get.Port); got != p.adminPort {
			t.Errorf("%s port %s is %d, want the admin port %d", probe.name, get.Port.String(), got, p.adminPort)
		}
	}

	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("postern has no securityContext")
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("securityContext.runAsNonRoot is not true")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("securityContext.runAsUser = %v, want a non-root UID", sc.RunAsUser)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("securityContext.readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("securityContext.allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("securityContext.privileged is true")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 {
		t.Errorf("securityContext.capabilities = %+v, want drop [ALL] and no add", sc.Capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("securityContext.seccompProfile = %+v, want RuntimeDefault", sc.SeccompProfile)
	}

	if want := ":" + appVersion(t); !strings.HasSuffix(c.Image, want) {
		t.Errorf("postern image %q, want the tag %q (the chart's appVersion)", c.Image, want)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Error("postern has no memory limit")
	}
	return p
}

// checkSecretReference: the signing keys come from the Secret by reference,
// as a mounted file or a secretKeyRef, and never as a literal value.
func checkSecretReference(t *testing.T, spec *corev1.PodSpec, p postern, secretName string, wantFile bool) {
	t.Helper()
	c := p.container
	for _, e := range c.Env {
		if strings.Contains(e.Value, "whsec_") {
			t.Errorf("env %s holds a literal key", e.Name)
		}
	}
	file, env := findEnv(c, "POSTERN_SECRETS_FILE"), findEnv(c, "POSTERN_SECRETS")
	if (file != nil) == (env != nil) {
		t.Fatalf("POSTERN_SECRETS_FILE set %v, POSTERN_SECRETS set %v; want exactly one", file != nil, env != nil)
	}
	if !wantFile {
		if env == nil {
			t.Fatal("POSTERN_SECRETS is not set")
		}
		ref := env.ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != secretName || ref.SecretKeyRef.Key == "" {
			t.Errorf("POSTERN_SECRETS = %+v, want a secretKeyRef to %s", env, secretName)
		}
		if env.Value != "" {
			t.Errorf("POSTERN_SECRETS has a literal value")
		}
		return
	}
	if file == nil {
		t.Fatal("POSTERN_SECRETS_FILE is not set")
	}
	// The file must be a key of the Secret, through a volume mount of it.
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if strings.HasPrefix(file.Value, strings.TrimSuffix(m.MountPath, "/")+"/") {
			mount = m
		}
	}
	if mount == nil {
		t.Fatalf("POSTERN_SECRETS_FILE %q is under no volume mount of postern", file.Value)
	}
	if !mount.ReadOnly || mount.SubPath != "" {
		t.Errorf("secrets mount %+v, want read-only and no subPath (a subPath never sees a rotation)", mount)
	}
	vol := findVolume(spec, mount.Name)
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != secretName {
		t.Fatalf("volume %q = %+v, want Secret %s", mount.Name, vol, secretName)
	}
	rel := strings.TrimPrefix(file.Value, strings.TrimSuffix(mount.MountPath, "/")+"/")
	keyed := false
	for _, item := range vol.Secret.Items {
		keyed = keyed || item.Path == rel
	}
	if !keyed {
		t.Errorf("POSTERN_SECRETS_FILE %q names no item of the Secret volume (%+v)", file.Value, vol.Secret.Items)
	}
	// The pod may have no fsGroup (a parent chart's pod), so only the "other"
	// read bit lets UID 65532 read a root-owned file.
	if m := vol.Secret.DefaultMode; m == nil || *m&0o004 == 0 {
		t.Errorf("secret volume mode %v: UID 65532 could not read it without an fsGroup", m)
	}
}

// checkApp: the app container is told to listen on 127.0.0.1 and exposes no
// port of its own.
func checkApp(t *testing.T, spec *corev1.PodSpec, p postern) {
	t.Helper()
	var app *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == "app" {
			app = &spec.Containers[i]
		}
	}
	if app == nil {
		t.Fatal("no app container")
	}
	loopback := false
	for _, e := range app.Env {
		if e.Value == "127.0.0.1" || e.Value == net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p.upstream))) {
			loopback = true
		}
	}
	if !loopback {
		t.Errorf("app env %+v tells it nothing about binding 127.0.0.1", app.Env)
	}
	if len(app.Ports) != 0 {
		t.Errorf("app declares ports %+v, want none (only postern is reachable)", app.Ports)
	}
}

// checkService: the Service selects the pods and sends every port to postern's
// webhook port, never to the app.
func checkService(t *testing.T, svc *corev1.Service, d *appsv1.Deployment, p postern) {
	t.Helper()
	if svc == nil {
		t.Fatalf("no Service named %s", d.Name)
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, d.Spec.Template.Labels)
		}
	}
	if len(svc.Spec.Ports) == 0 {
		t.Fatal("Service has no ports")
	}
	for _, port := range svc.Spec.Ports {
		if got := resolvePort(t, p.container, port.TargetPort); got != p.webhookPort {
			t.Errorf("Service port %s targets %d, want postern's webhook port %d (the app is on %d)", port.Name, got, p.webhookPort, p.upstream)
		}
	}
}

func checkSchemasMounted(t *testing.T, r rendering, d *appsv1.Deployment, p postern) {
	t.Helper()
	cm := r.one(t, "ConfigMap", nil)
	dir := envValue(p.container, "POSTERN_SCHEMA_DIR")
	if dir == "" {
		t.Fatal("POSTERN_SCHEMA_DIR is not set")
	}
	var mount *corev1.VolumeMount
	for i := range p.container.VolumeMounts {
		if p.container.VolumeMounts[i].MountPath == dir {
			mount = &p.container.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("nothing mounted at POSTERN_SCHEMA_DIR %s", dir)
	}
	vol := findVolume(&d.Spec.Template.Spec, mount.Name)
	if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != cm.Metadata.Name {
		t.Errorf("volume %s = %+v, want ConfigMap %s", mount.Name, vol, cm.Metadata.Name)
	}
	if d.Spec.Template.Annotations["checksum/postern-schemas"] == "" {
		t.Error("no checksum/postern-schemas pod annotation: pods would not roll on a schema change")
	}
}

func checkMonitoring(t *testing.T, r rendering, d *appsv1.Deployment, p postern) {
	t.Helper()
	selector := d.Spec.Selector.MatchLabels

	np := r.networkPolicy(t)
	var open []int32
	for _, rule := range np.Spec.Ingress {
		for _, port := range rule.Ports {
			open = append(open, port.Port.IntVal)
		}
	}
	slices.Sort(open)
	if want := []int32{p.webhookPort, p.adminPort}; !slices.Equal(open, want) {
		t.Errorf("NetworkPolicy opens ports %v, want %v (and never the app's %d)", open, want, p.upstream)
	}
	if !mapsEqual(np.Spec.PodSelector.MatchLabels, selector) {
		t.Errorf("NetworkPolicy selects %v, want %v", np.Spec.PodSelector.MatchLabels, selector)
	}

	pdb := r.pdb(t)
	if pdb.Spec.Selector == nil || !mapsEqual(pdb.Spec.Selector.MatchLabels, selector) {
		t.Errorf("PodDisruptionBudget selects %v, want %v", pdb.Spec.Selector, selector)
	}

	// The ServiceMonitor scrapes /metrics on a Service port that leads to the
	// admin port.
	sm := r.one(t, "ServiceMonitor", nil)
	var monitor struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			Endpoints []struct {
				Port string `json:"port"`
				Path string `json:"path"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	if err := jsonUnmarshal(sm.JSON, &monitor); err != nil {
		t.Fatal(err)
	}
	if len(monitor.Spec.Endpoints) != 1 || monitor.Spec.Endpoints[0].Path != "/metrics" {
		t.Fatalf("ServiceMonitor endpoints %+v, want one on /metrics", monitor.Spec.Endpoints)
	}
	scraped := false
	for _, svc := range r.services(t) {
		if !subset(monitor.Spec.Selector.MatchLabels, svc.Labels) {
			continue
		}
		for _, port := range svc.Spec.Ports {
			if port.Name == monitor.Spec.Endpoints[0].Port && resolvePort(t, p.container, port.TargetPort) == p.adminPort {
				scraped = true
			}
		}
	}
	if !scraped {
		t.Errorf("no Service selected by the ServiceMonitor has a port %q leading to the admin port %d", monitor.Spec.Endpoints[0].Port, p.adminPort)
	}
}

func TestSidecarModeAuto(t *testing.T) {
	for _, tc := range []struct {
		kube   string
		native bool
	}{
		{"1.28.9", false},
		{"1.29.0", true},
		{"v1.31.4-eks-2d98532", true},
	} {
		t.Run(tc.kube, func(t *testing.T) {
			out, err := helm(t, "template", "test", chartDir, "--kube-version", tc.kube, "-f", filepath.Join(chartDir, "ci", "secrets-file-values.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			d := parse(t, out).deployment(t)
			checkSidecar(t, &d.Spec.Template.Spec, tc.native)
		})
	}
}

func TestPodsRollWhenSchemasChange(t *testing.T) {
	base := []string{"-f", filepath.Join(chartDir, "ci", "schemas-configmap-values.yaml")}
	a := render(t, chartDir, base...).deployment(t).Spec.Template.Annotations["checksum/postern-schemas"]
	b := render(t, chartDir, append(base, "--set-json", `schemas.files={"REFERRAL_CREATED.json":"{\"type\":\"object\"}"}`)...).deployment(t).Spec.Template.Annotations["checksum/postern-schemas"]
	if a == "" || a == b {
		t.Errorf("checksum/postern-schemas %q then %q, want two different values", a, b)
	}
}

func TestExistingSchemasConfigMap(t *testing.T) {
	r := render(t, chartDir, "-f", filepath.Join(chartDir, "ci", "native-values.yaml"), "--set", "schemas.existingConfigMap=referral-schemas")
	if n := len(r.find("ConfigMap")); n != 0 {
		t.Errorf("rendered %d ConfigMaps for an existing one", n)
	}
	d := r.deployment(t)
	vol := findVolume(&d.Spec.Template.Spec, "postern-schemas")
	if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != "referral-schemas" {
		t.Errorf("postern-schemas volume %+v, want ConfigMap referral-schemas", vol)
	}
}

func TestRefusesBadValues(t *testing.T) {
	native := filepath.Join(chartDir, "ci", "native-values.yaml")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no secret", []string{"--set-string", "app.image.repository=r,app.image.tag=1,app.bind.env=HOST"}, "secrets.existingSecret"},
		{"no app image", []string{"--set", "secrets.existingSecret=s,app.bind.env=HOST"}, "app.image.repository"},
		{"no bind env", []string{"--set-string", "secrets.existingSecret=s,app.image.repository=r,app.image.tag=1"}, "app.bind.env"},
		{"latest postern", []string{"-f", native, "--set", "image.tag=latest"}, `image.tag: "latest" is not allowed`},
		{"latest app", []string{"-f", native, "--set", "app.image.tag=latest"}, `app.image.tag: "latest" is not allowed`},
		{"grace shorter than the drain", []string{"-f", native, "--set", "config.shutdownTimeout=60s"}, "terminationGracePeriodSeconds: 30 does not exceed config.shutdownTimeout (60s)"},
		{"grace shorter than the drain, in minutes", []string{"-f", native, "--set", "config.shutdownTimeout=1m"}, "terminationGracePeriodSeconds: 30 does not exceed config.shutdownTimeout (1m)"},
		{"one port for both", []string{"-f", native, "--set", "ports.admin=8090"}, "ports.admin: 8090 is ports.webhook too"},
		{"upstream on postern's port", []string{"-f", native, "--set", "upstream.port=8091"}, "upstream.port: 8091 is one of postern's own ports"},
		{"upstream timeout past the sender's", []string{"-f", native, "--set", "upstream.timeout=30s"}, "/upstream/timeout"},
		{"zero upstream timeout", []string{"-f", native, "--set", "upstream.timeout=0s"}, "/upstream/timeout"},
		{"zero tolerance", []string{"-f", native, "--set", "config.timestampTolerance=0s"}, "/config/timestampTolerance"},
		{"too many dedupe entries", []string{"-f", native, "--set", "config.dedupeMaxEntries=2000000000"}, "/config/dedupeMaxEntries"},
		{"Go duration for Prometheus", []string{"-f", native, "--set", "metrics.serviceMonitor.interval=1.5s"}, "/metrics/serviceMonitor/interval"},
		{"misspelt key", []string{"-f", native, "--set", "secrets.existingSecrett=x"}, "existingSecrett"},
		{"not otel", []string{"-f", native, "--set", "otel.env.HTTP_PROXY=x"}, "at '/otel/env': additional properties 'HTTP_PROXY' not allowed"},
		{"bad mode", []string{"-f", native, "--set", "mode=both"}, "/mode"},
		{"bad sidecar mode", []string{"-f", native, "--set", "sidecar.mode=sometimes"}, "/sidecar/mode"},
		{"bad schema file name", []string{"-f", native, "--set-json", `schemas.files={"x.yaml":"{}"}`}, "x.yaml"},
		{"bad engine", []string{"-f", native, "--set", "config.engine=threads"}, "/config/engine"},
		{"app probe on the pod IP", []string{"-f", native, "--set", "app.readinessProbe.tcpSocket.port=8080"}, "app.readinessProbe: the app listens on 127.0.0.1"},
		{"app HTTP probe", []string{"-f", native, "--set", "app.livenessProbe.httpGet.port=8080"}, "app.livenessProbe: the app listens on 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := renderError(t, tc.args...); !strings.Contains(got, tc.want) {
				t.Errorf("error %q does not mention %q", got, tc.want)
			}
		})
	}
}

// TestEngineValue: config.engine reaches postern as POSTERN_ENGINE, the
// event loop unless set.
func TestEngineValue(t *testing.T) {
	native := filepath.Join(chartDir, "ci", "native-values.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "loop"},
		{[]string{"--set", "config.engine=goroutine"}, "goroutine"},
	} {
		r := render(t, chartDir, append([]string{"-f", native}, tc.args...)...)
		p := checkSidecar(t, &r.deployment(t).Spec.Template.Spec, true)
		if got := envValue(p.container, "POSTERN_ENGINE"); got != tc.want {
			t.Errorf("with %v: POSTERN_ENGINE = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestOtelEnvNumbers: numbers in otel.env reach postern as the digits
// written, not in Go's float notation (1e+06), which the SDK ignores.
func TestOtelEnvNumbers(t *testing.T) {
	native := filepath.Join(chartDir, "ci", "native-values.yaml")
	values := filepath.Join(t.TempDir(), "otel.yaml") // a file: --set would pass integers as integers
	os.WriteFile(values, []byte("otel:\n  env:\n    OTEL_BSP_MAX_QUEUE_SIZE: 1000000\n"+
		"    OTEL_TRACES_SAMPLER_ARG: 0.25\n    OTEL_BSP_SCHEDULE_DELAY: 5000\n"), 0o644)
	r := render(t, chartDir, "-f", native, "-f", values)
	p := checkSidecar(t, &r.deployment(t).Spec.Template.Spec, true)
	for name, want := range map[string]string{
		"OTEL_BSP_MAX_QUEUE_SIZE": "1000000",
		"OTEL_TRACES_SAMPLER_ARG": "0.25",
		"OTEL_BSP_SCHEDULE_DELAY": "5000",
	} {
		if got := envValue(p.container, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// TestParentChart renders charts/examples/legacy-app, which has postern as a
// dependency and includes its templates, as a user with a chart would.
func TestParentChart(t *testing.T) {
	tmp := t.TempDir()
	copyDir(t, "../examples/legacy-app", filepath.Join(tmp, "examples", "legacy-app"))
	abs, err := filepath.Abs(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	// The example names its dependency as file://../../postern.
	if err := os.Symlink(abs, filepath.Join(tmp, "postern")); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(tmp, "examples", "legacy-app")
	if out, err := helm(t, "dependency", "build", parent); err != nil {
		t.Fatalf("helm dependency build: %v\n%s", err, out)
	}
	if out, err := helm(t, "lint", "--strict", "--kube-version", kubeVersion(), parent); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		mode   string
		native bool
	}{{"native", true}, {"classic", false}} {
		t.Run(tc.mode, func(t *testing.T) {
			r := render(t, parent, "--set", "postern.sidecar.mode="+tc.mode, "--set-json", `postern.schemas.files={"REFERRAL_CREATED.json":"{}"}`)
			d := r.deployment(t)
			spec := &d.Spec.Template.Spec
			p := checkSidecar(t, spec, tc.native)
			checkSecretReference(t, spec, p, "legacy-app-webhook-keys", true)
			if got := p.upstream; got != 3000 {
				t.Errorf("postern forwards to port %d, want the app's 3000", got)
			}
			checkService(t, r.services(t)[d.Name], d, p)
			checkSchemasMounted(t, r, d, p)
			for _, kind := range []string{"Service", "Deployment"} {
				for _, m := range r.find(kind) {
					if strings.Contains(m.Source, "charts/postern/") {
						t.Errorf("the postern dependency in mode sidecar rendered %s %s", kind, m.Metadata.Name)
					}
				}
			}
		})
	}
}

func envValue(c *corev1.Container, name string) string {
	if e := findEnv(c, name); e != nil {
		return e.Value
	}
	return ""
}

func findEnv(c *corev1.Container, name string) *corev1.EnvVar {
	var found *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == name {
			if found != nil {
				return nil // set twice: treat as broken
			}
			found = &c.Env[i]
		}
	}
	return found
}

func findVolume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func hasContainerPort(c *corev1.Container, port int32) bool {
	for _, p := range c.Ports {
		if p.ContainerPort == port {
			return true
		}
	}
	return false
}

// resolvePort turns a probe or Service target port (a number or a port name of
// c) into a number.
func resolvePort(t *testing.T, c *corev1.Container, port intstr.IntOrString) int32 {
	t.Helper()
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort
		}
	}
	t.Errorf("port name %q is not a port of container %s", port.StrVal, c.Name)
	return 0
}

// addrPort returns the port of a host:port address such as ":8090".
func addrPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

func mapsEqual(a, b map[string]string) bool { return subset(a, b) && subset(b, a) }

func subset(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) > 0
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-R", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -R %s %s: %v\n%s", src, dst, err, out)
	}
}
