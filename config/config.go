package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/postern-dev/postern/proxy/schema"
	"github.com/postern-dev/postern/proxy/signature"
)

// Prefix is the prefix of every variable postern reads.
const Prefix = "POSTERN_"

// SenderTimeout is how long the sender waits for an answer before it counts the
// delivery as failed. The upstream timeout must fit inside it.
const SenderTimeout = 15 * time.Second

// maxDedupeEntries bounds POSTERN_DEDUPE_MAX_ENTRIES: a billion ids take
// about 34 GB, far beyond any sidecar, and the store indexes entries with
// 32 bits.
const maxDedupeEntries = 1_000_000_000

// Config is postern's whole configuration. Each field's comment is the user
// documentation of its variable; the README's table is kept in sync by a test.
type Config struct {
	// ListenAddr is where webhook senders connect.
	ListenAddr string `env:"LISTEN_ADDR" envDefault:":8090"`
	// AdminAddr serves /healthz, /readyz and /metrics.
	AdminAddr string `env:"ADMIN_ADDR" envDefault:":8091"`
	// UpstreamURL is the application that receives verified webhooks.
	UpstreamURL string `env:"UPSTREAM_URL" envDefault:"http://127.0.0.1:8080"`
	// UpstreamTimeout bounds the application's answer; the sender gives up after 15s.
	UpstreamTimeout time.Duration `env:"UPSTREAM_TIMEOUT" envDefault:"10s"`
	// AllowRemoteUpstream permits a non-loopback UpstreamURL.
	AllowRemoteUpstream bool `env:"ALLOW_REMOTE_UPSTREAM" envDefault:"false"`
	// Secrets is a list of signing keys (whsec_ prefix optional), separated by
	// commas or one per line; any may match.
	Secrets string `env:"SECRETS"`
	// SecretsFile holds one signing key per line and is re-read when it changes.
	SecretsFile string `env:"SECRETS_FILE"`
	// TimestampTolerance is the accepted clock difference, in both directions.
	TimestampTolerance time.Duration `env:"TIMESTAMP_TOLERANCE" envDefault:"5m"`
	// MaxBodyBytes caps the request body.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"1048576"`
	// EventTypePointer is the RFC 6901 pointer to the event type in the body.
	EventTypePointer string `env:"EVENT_TYPE_POINTER" envDefault:"/eventType"`
	// SchemaDir holds <EVENT_TYPE>.json JSON Schemas and replaces the built-in set.
	SchemaDir string `env:"SCHEMA_DIR"`
	// UnknownEvents is the policy for event types without a schema: forward, reject or ack.
	UnknownEvents string `env:"UNKNOWN_EVENTS" envDefault:"forward"`
	// Dedupe selects duplicate suppression by message id: off or memory.
	Dedupe string `env:"DEDUPE" envDefault:"memory"`
	// DedupeTTL is how long an acknowledged message id is remembered.
	DedupeTTL time.Duration `env:"DEDUPE_TTL" envDefault:"24h"`
	// DedupeMaxEntries bounds the number of remembered message ids.
	DedupeMaxEntries int `env:"DEDUPE_MAX_ENTRIES" envDefault:"100000"`
	// ShutdownTimeout is the drain time after SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	// LogLevel is debug, info, warn or error; audit records are written at every level.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// AuditBody includes the raw request body in audit records.
	AuditBody bool `env:"AUDIT_BODY" envDefault:"false"`
	// Engine is the webhook listener's HTTP engine: loop (an epoll event loop, on Linux with a plain-HTTP upstream on loopback; otherwise the goroutine engine) or goroutine.
	Engine string `env:"ENGINE" envDefault:"loop"`

	// Keys are the decoded signing keys from Secrets or SecretsFile, filled by Load.
	Keys [][]byte `env:"-"`
	// Pointer is EventTypePointer parsed, filled by Load.
	Pointer schema.Pointer `env:"-"`
	// Schemas are the compiled schemas from SchemaDir or the built-in set, filled by Load.
	Schemas *schema.Set `env:"-"`
}

// Load parses and validates the configuration from environ (KEY=VALUE
// strings, as os.Environ returns). The error lists every problem, one per
// line, each starting with the variable's name.
func Load(environ []string) (Config, error) {
	opts := env.Options{Environment: env.ToMap(environ), Prefix: Prefix}
	cfg, err := env.ParseAsWithOptions[Config](opts)
	var problems []string
	if err != nil {
		problems = append(problems, parseProblems(err)...)
	}
	// A value that did not parse is left at zero; validating that zero would
	// name the same variable again with a value the user never set.
	unparsed := map[string]bool{}
	for _, p := range problems {
		name, _, _ := strings.Cut(p, ":")
		unparsed[name] = true
	}
	for _, p := range cfg.validate() {
		if name, _, _ := strings.Cut(p, ":"); !unparsed[name] {
			problems = append(problems, p)
		}
	}
	for i, p := range problems {
		problems[i] = oneLine(p)
	}
	if len(problems) > 0 {
		return cfg, &Error{Problems: problems}
	}
	return cfg, nil
}

// Peek parses environ without validating it, for commands such as
// healthcheck that need one value and must not fail on the others.
func Peek(environ []string) Config {
	cfg, _ := env.ParseAsWithOptions[Config](env.Options{Environment: env.ToMap(environ), Prefix: Prefix})
	return cfg
}

// Error is a configuration that cannot be used. Each problem names its variable.
type Error struct {
	Problems []string
}

func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }

// parseProblems turns the env library's errors into lines that name the variable.
func parseProblems(err error) []string {
	keys := map[string]string{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		keys[f.Name] = Prefix + f.Tag.Get("env")
	}
	errs := []error{err}
	var agg env.AggregateError
	if errors.As(err, &agg) {
		errs = agg.Errors
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		var pe env.ParseError
		if errors.As(e, &pe) {
			out = append(out, keys[pe.Name]+": "+describe(pe))
			continue
		}
		out = append(out, e.Error())
	}
	return out
}

// oneLine joins the lines of a multi-line message (the schema compiler's
// errors are trees) so that each problem stays one line.
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

func describe(pe env.ParseError) string {
	switch pe.Type.String() {
	case "time.Duration":
		return "not a duration (use a number with a unit, e.g. 10s or 5m)"
	case "bool":
		return "not a boolean (use true or false)"
	case "int", "int64":
		return "not an integer"
	}
	return pe.Err.Error()
}

func (c *Config) validate() []string {
	var p []string
	add := func(name, format string, args ...any) {
		p = append(p, Prefix+name+": "+fmt.Sprintf(format, args...))
	}
	for _, a := range []struct{ name, addr string }{{"LISTEN_ADDR", c.ListenAddr}, {"ADMIN_ADDR", c.AdminAddr}} {
		if host, port, err := net.SplitHostPort(a.addr); err != nil {
			add(a.name, "%q is not host:port (e.g. :8090 or 127.0.0.1:8090)", a.addr)
		} else if !isPort(port, 0) {
			add(a.name, "port %q is not a number from 0 to 65535", port)
		} else if !isHost(host) {
			add(a.name, "host %q is not an IP address or a host name", host)
		}
	}
	if sameListener(c.ListenAddr, c.AdminAddr) {
		add("ADMIN_ADDR", "must differ from POSTERN_LISTEN_ADDR (the same port on the same address)")
	}
	if msg := checkUpstream(c.UpstreamURL, c.AllowRemoteUpstream); msg != "" {
		add("UPSTREAM_URL", "%s", msg)
	} else if name := ownAddr(c.UpstreamURL, c.ListenAddr, c.AdminAddr); name != "" {
		add("UPSTREAM_URL", "is postern's own %s: it must be where the app listens", Prefix+name)
	}
	if c.UpstreamTimeout <= 0 || c.UpstreamTimeout >= SenderTimeout {
		add("UPSTREAM_TIMEOUT", "must be above 0 and below the sender's 15s, got %s", c.UpstreamTimeout)
	}
	p = append(p, c.loadKeys()...)
	if c.TimestampTolerance <= 0 {
		add("TIMESTAMP_TOLERANCE", "must be above 0, got %s", c.TimestampTolerance)
	}
	if c.MaxBodyBytes <= 0 {
		add("MAX_BODY_BYTES", "must be above 0, got %d", c.MaxBodyBytes)
	}
	if ptr, err := schema.ParsePointer(c.EventTypePointer); err != nil {
		add("EVENT_TYPE_POINTER", "%s", err)
	} else {
		c.Pointer = ptr
	}
	if set, err := schema.Load(c.SchemaDir); err != nil {
		add("SCHEMA_DIR", "%s", err)
	} else {
		c.Schemas = set
	}
	if !oneOf(c.Engine, "loop", "goroutine") {
		add("ENGINE", "%q is not one of loop, goroutine", c.Engine)
	}
	if !oneOf(c.UnknownEvents, "forward", "reject", "ack") {
		add("UNKNOWN_EVENTS", "%q is not one of forward, reject, ack", c.UnknownEvents)
	}
	if !oneOf(c.Dedupe, "off", "memory") {
		add("DEDUPE", "%q is not one of off, memory", c.Dedupe)
	}
	if c.DedupeTTL <= 0 {
		add("DEDUPE_TTL", "must be above 0, got %s", c.DedupeTTL)
	}
	if c.DedupeMaxEntries <= 0 || c.DedupeMaxEntries > maxDedupeEntries {
		add("DEDUPE_MAX_ENTRIES", "must be from 1 to %d, got %d", maxDedupeEntries, c.DedupeMaxEntries)
	}
	if c.ShutdownTimeout <= 0 {
		add("SHUTDOWN_TIMEOUT", "must be above 0, got %s", c.ShutdownTimeout)
	}
	if !oneOf(strings.ToLower(c.LogLevel), "debug", "info", "warn", "error") {
		add("LOG_LEVEL", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	return p
}

// loadKeys decodes the signing keys from Secrets or SecretsFile.
func (c *Config) loadKeys() []string {
	switch {
	case c.Secrets != "" && c.SecretsFile != "":
		return []string{Prefix + "SECRETS: set either POSTERN_SECRETS or POSTERN_SECRETS_FILE, not both"}
	case c.Secrets == "" && c.SecretsFile == "":
		return []string{Prefix + "SECRETS: required (or POSTERN_SECRETS_FILE): the webhook signing secret(s), whsec_..."}
	case c.Secrets != "":
		keys, err := signature.ParseSecrets(signature.SplitSecrets(c.Secrets))
		if err != nil {
			return []string{Prefix + "SECRETS: " + err.Error()}
		}
		c.Keys = keys
	default:
		keys, err := signature.ReadSecretsFile(c.SecretsFile)
		if err != nil {
			return []string{Prefix + "SECRETS_FILE: " + err.Error()}
		}
		c.Keys = keys
	}
	return nil
}

// checkUpstream returns what is wrong with the upstream URL, or "".
func checkUpstream(raw string, allowRemote bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "not a valid URL" // not echoed: it may hold credentials
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Sprintf("%q is not an http:// or https:// URL with a host", u.Redacted())
	}
	if u.User != nil {
		return "must not contain credentials"
	}
	if p := u.Port(); p != "" && !isPort(p, 1) {
		return fmt.Sprintf("port %q is not a number from 1 to 65535", p)
	}
	if !isHost(u.Hostname()) {
		return fmt.Sprintf("host %q is not an IP address or a host name", u.Hostname())
	}
	if allowRemote || isLoopback(u.Hostname()) {
		return ""
	}
	return fmt.Sprintf("host %q is not loopback; set POSTERN_ALLOW_REMOTE_UPSTREAM=true to allow it", u.Hostname())
}

// ownAddr names the listener (LISTEN_ADDR or ADMIN_ADDR) that upstream, a
// checked URL, would reach on this host: postern forwarding to itself.
func ownAddr(upstream, listen, admin string) string {
	u, _ := url.Parse(upstream)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if !isLoopback(u.Hostname()) {
		return ""
	}
	for _, a := range []struct{ name, addr string }{{"LISTEN_ADDR", listen}, {"ADMIN_ADDR", admin}} {
		if sameListener(a.addr, net.JoinHostPort(u.Hostname(), port)) {
			return a.name
		}
	}
	return ""
}

// sameListener reports whether host:port addresses a and b name the same
// socket: the same port (not 0, which picks a free one), on the same
// address, or on all addresses for either. "localhost" is 127.0.0.1.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	ha, hb = canonicalHost(ha), canonicalHost(hb)
	return ha == "" || hb == "" || ha == hb
}

// canonicalHost is host as sameListener compares it: "" for all addresses.
func canonicalHost(host string) string {
	if strings.EqualFold(host, "localhost") {
		return "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.IsUnspecified() {
			return ""
		}
		return ip.Unmap().String()
	}
	return strings.ToLower(host)
}

// isHost reports whether host can be listened on: empty (all addresses),
// an IP address (with an IPv6 zone) or a DNS name.
func isHost(host string) bool {
	if host == "" {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for i := 0; i < len(host); i++ {
		switch b := host[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '.':
		default:
			return false
		}
	}
	// A name's last label is never all digits (RFC 3696, 2): 256.1.1.1 is
	// an IP address that is not one, not a name to look up.
	last := host[strings.LastIndexByte(strings.TrimSuffix(host, "."), '.')+1:]
	return strings.TrimLeft(strings.TrimSuffix(last, "."), "0123456789") != ""
}

// isPort reports whether p is a decimal port number from min to 65535.
func isPort(p string, min int) bool {
	n, err := strconv.Atoi(p)
	return err == nil && p[0] != '+' && p[0] != '-' && n >= min && n <= 65535
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// Variables returns the name and default of every variable, sorted by name,
// for the README table and `postern check-config`.
func Variables() ([]env.FieldParams, error) {
	params, err := env.GetFieldParamsWithOptions(&Config{}, env.Options{Prefix: Prefix})
	if err != nil {
		return nil, err
	}
	out := params[:0]
	for _, p := range params {
		if !p.Ignored {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
