// Command postern is a sidecar that verifies Svix / Standard Webhooks
// signatures and event schemas before forwarding webhooks to an application.
// See README.md; the product contract is DESIGN.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/postern-dev/postern/config"
	"github.com/postern-dev/postern/proxy"
	"github.com/postern-dev/postern/proxy/demo"
	"github.com/postern-dev/postern/proxy/jsonlog"
	"github.com/postern-dev/postern/proxy/signature"
	"github.com/postern-dev/postern/proxy/telemetry"
	"go.opentelemetry.io/otel"
)

// version is set at build time with -ldflags "-X main.version=...";
// otherwise it is the module version go install recorded, or "dev".
var version = "dev"

func init() {
	if version == "dev" {
		version = moduleVersion(debug.ReadBuildInfo())
	}
}

// moduleVersion is the version of the main module in bi, as go install
// records it (v0.1.0, or a pseudo-version), or "dev" for a build from a
// checkout.
func moduleVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		return "dev"
	}
	return bi.Main.Version
}

// drainGrace is how long, after SIGTERM, new requests are answered 503
// shutting_down before the listener closes.
const drainGrace = time.Second

// logFlushInterval bounds how long a log or audit record waits in the
// buffer before it reaches stdout.
const logFlushInterval = 100 * time.Millisecond

// gcPercent and memoryLimit are the GOGC and GOMEMLIMIT postern runs with
// unless those variables are set. The limit decides how often the collector
// runs under load: in bench/run, with a full dedupe store, 24 MiB gave a
// peak RSS of 36 MiB, 28 MiB 40.5 MiB for about a tenth less CPU per
// request; 26 MiB keeps RSS under 40 MiB.
const (
	gcPercent   = 400
	memoryLimit = 26 << 20
)

// maxProcs is the GOMAXPROCS postern runs with unless that variable is set,
// and so the number of event loops that serve (proxy.Loop). A sidecar's CPU
// is paid in every pod: one loop verifies and forwards 26,000-31,000
// webhooks a second on one core of the benchmark machine, and two loops
// there cost more CPU per request for little or no more throughput, since
// each gets smaller rounds of events (README.md, Performance). Set
// GOMAXPROCS for more loops where the pod has cores to spare.
const maxProcs = 1

// secretsPollInterval is how often POSTERN_SECRETS_FILE is checked for changes.
const secretsPollInterval = 2 * time.Second

func main() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(maxProcs)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	var cfgErr *config.Error
	switch {
	case errors.As(err, &cfgErr):
		fmt.Fprintln(os.Stderr, cfgErr.Error())
		os.Exit(2)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "postern:", err)
		os.Exit(1)
	}
}

// run is the whole program: the command in args[0] (serve by default) with
// its environment and streams.
func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	isHelp := func(s string) bool { return s == "help" || s == "-h" || s == "--help" || s == "-help" }
	if isHelp(cmd) || cmd != "sign" && len(args) == 1 && isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if len(args) > 0 && cmd != "sign" {
		return fmt.Errorf("%s takes no arguments, got %q (configuration is environment variables only)\n%s", cmd, args, usage)
	}
	switch cmd {
	case "serve":
		cfg, err := config.Load(environ)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, environ, stdout, nil)
	case "check-config":
		if _, err := config.Load(environ); err != nil {
			return err
		}
		tel, err := telemetry.New(ctx, environ, version)
		if err != nil {
			return &config.Error{Problems: []string{err.Error()}}
		}
		tel.Shutdown(ctx)
		fmt.Fprintln(stdout, "configuration ok")
		return nil
	case "version":
		fmt.Fprintln(stdout, "postern", version)
		return nil
	case "healthcheck":
		return healthcheck(ctx, config.Peek(environ).AdminAddr)
	case "sign":
		return sign(args, environ, stdin, stdout, stderr)
	case "demo":
		exe, err := os.Executable()
		if err != nil {
			exe = ""
		}
		self := demoSelf(exe)
		return demo.Run(ctx, stdout, self, func(ctx context.Context, environ []string, logs io.Writer, onListen func(listen, admin net.Addr)) error {
			cfg, err := config.Load(environ)
			if err != nil {
				return err
			}
			return serve(ctx, cfg, environ, logs, onListen)
		})
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage: postern [command]

  serve         verify and forward webhooks (the default); configured by POSTERN_* variables
  check-config  check the configuration as serve would, and exit 0 or 2
  demo          run postern in front of an example app and send it five events
  sign          print signature headers for the body on stdin (sign -h for its flags)
  healthcheck   ask the admin listener's /healthz; exit 0 or 1 (for container HEALTHCHECKs)
  version       print the version

The variables are in README.md, Configuration.
`

// serve wires the configuration into telemetry, the handler and the servers
// and runs them until ctx ends; telemetry is flushed on the way out.
func serve(ctx context.Context, cfg config.Config, environ []string, stdout io.Writer, onListen func(listen, admin net.Addr)) (err error) {
	out := newLogWriter(stdout, logFlushInterval)
	defer out.Close()
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config.Load
	log := slog.New(jsonlog.New(out, &slog.HandlerOptions{Level: level}))
	audit := slog.New(jsonlog.New(out, nil))

	if !hasVar(environ, "GOGC") {
		// postern's live heap is a few MiB (up to about 13 MiB with
		// 100,000 remembered ids): collect at 5x it rather than 2x, while
		// the soft memory limit below bounds the heap, so that peak RSS
		// under load stays under 40 MiB (36 MiB at 9k req/s with a full
		// dedupe store, 16 MiB of it the binary's own pages; 32 MiB gave
		// 45 MiB of RSS for a tenth less CPU per request).
		debug.SetGCPercent(gcPercent)
	}
	if !hasVar(environ, "GOMEMLIMIT") {
		debug.SetMemoryLimit(memoryLimit)
	}
	tel, err := telemetry.New(ctx, environ, version)
	if err != nil {
		return &config.Error{Problems: []string{err.Error()}}
	}
	// The SDK's own errors (an export that failed) go to the JSON log,
	// not to the standard logger's plain lines on stderr.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("telemetry error", "error", err.Error())
	}))
	defer func() {
		// Spans not flushed are lost, as an export that failed is: logged,
		// and the exit status stays the drain's.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if terr := tel.Shutdown(sctx); terr != nil {
			log.Warn("telemetry error", "error", "flushing traces at exit: "+terr.Error())
		}
	}()
	if tel.Exporting != "" {
		log.Info("exporting traces", "exporter", tel.Exporting)
	}

	verifier := signature.NewVerifier(cfg.Keys)
	if cfg.SecretsFile != "" {
		go verifier.WatchFile(ctx, cfg.SecretsFile, secretsPollInterval, log)
	}
	upstream, _ := url.Parse(cfg.UpstreamURL) // validated by config.Load
	opts := proxy.Options{
		Upstream:           upstream,
		UpstreamTimeout:    cfg.UpstreamTimeout,
		Verifier:           verifier,
		TimestampTolerance: cfg.TimestampTolerance,
		MaxBodyBytes:       cfg.MaxBodyBytes,
		Schemas:            cfg.Schemas,
		EventType:          cfg.Pointer,
		UnknownEvents:      cfg.UnknownEvents,
		Dedupe:             cfg.Dedupe == "memory",
		DedupeTTL:          cfg.DedupeTTL,
		DedupeMaxEntries:   cfg.DedupeMaxEntries,
		Audit:              audit,
		AuditBody:          cfg.AuditBody,
		Log:                log,
		Metrics:            tel.Registry,
	}
	if tel.TracerProvider != nil {
		opts.Tracer = tel.TracerProvider.Tracer("postern")
	}
	h, err := proxy.New(opts)
	if err != nil {
		return err
	}
	srv := &proxy.Server{
		Handler:         h,
		Admin:           proxy.NewAdmin(h, tel.Metrics),
		ListenAddr:      cfg.ListenAddr,
		AdminAddr:       cfg.AdminAddr,
		UpstreamTimeout: cfg.UpstreamTimeout,
		ShutdownTimeout: cfg.ShutdownTimeout,
		DrainGrace:      drainGrace,
		Engine:          cfg.Engine,
		Log:             log,
		OnListen:        onListen,
	}
	return srv.Run(ctx)
}

// healthcheck asks the admin listener's /healthz, for container HEALTHCHECKs
// in images without curl.
func healthcheck(ctx context.Context, adminAddr string) error {
	host, port, err := net.SplitHostPort(adminAddr)
	if err != nil {
		return fmt.Errorf("POSTERN_ADMIN_ADDR: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: "/healthz"} // String escapes an IPv6 zone
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("POSTERN_ADMIN_ADDR: %w", err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %d", resp.StatusCode)
	}
	return nil
}

// sign prints the signature headers for the body on stdin, one "name: value"
// per line, ready for curl -H @-.
func sign(args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", "", "signing secret, whsec_... (default: the first key of POSTERN_SECRETS or POSTERN_SECRETS_FILE)")
	id := fs.String("id", "", "message id (default: a new random msg_ id)")
	ts := fs.String("timestamp", "", "unix timestamp in seconds, decimal (default: now)")
	prefix := fs.String("prefix", "svix", "header names: svix (svix-id, ...) or webhook (webhook-id, ...)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: postern sign [flags] < body.json | curl -H @- --data-binary @body.json URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sign: unexpected argument %q (the body is read from stdin)", fs.Arg(0))
	}
	idSet := false
	fs.Visit(func(f *flag.Flag) { idSet = idSet || f.Name == "id" })
	if idSet && !signature.ValidID(*id) {
		return fmt.Errorf("sign: --id must be 1 to %d visible ASCII characters, no spaces", signature.MaxIDLen)
	}
	when := time.Now()
	if *ts != "" {
		// Decimal, as the verifier reads the header (flag.Int64 would take
		// 0100 as octal and 0x10 as hex).
		secs, err := strconv.ParseInt(*ts, 10, 64)
		if err != nil || secs < 0 || strings.HasPrefix(*ts, "+") {
			return fmt.Errorf("sign: --timestamp must be a unix time in seconds, decimal digits only")
		}
		when = time.Unix(secs, 0)
	}
	var keys [][]byte
	var err error
	switch cfg := config.Peek(environ); {
	case *secret != "":
		keys, err = signature.ParseSecrets([]string{*secret})
	case cfg.Secrets != "":
		first := signature.SplitSecrets(cfg.Secrets)
		keys, err = signature.ParseSecrets(first[:min(len(first), 1)])
	case cfg.SecretsFile != "":
		keys, err = signature.ReadSecretsFile(cfg.SecretsFile)
	default:
		err = errors.New("no key: pass --secret whsec_... or set POSTERN_SECRETS or POSTERN_SECRETS_FILE")
	}
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if *prefix != "svix" && *prefix != "webhook" {
		return fmt.Errorf("sign: --prefix must be svix or webhook")
	}
	body, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	if *id == "" {
		*id = demo.NewMessageID()
	}
	fmt.Fprintf(stdout, "%[1]s-id: %[2]s\n%[1]s-timestamp: %[3]d\n%[1]s-signature: %[4]s\nContent-Type: application/json\n",
		*prefix, *id, when.Unix(), signature.Sign(keys[0], *id, when, body))
	return nil
}

// demoSelf is how the user ran postern (exe: its executable, "" if
// unknown), for the demo's ready-to-paste command: "go run ." from a build
// cache, else the executable by the name the PATH finds it under, or by its
// path.
func demoSelf(exe string) string {
	switch {
	case exe == "" || strings.Contains(exe, "go-build"):
		return "go run ."
	case lookPath(filepath.Base(exe)) == exe:
		return filepath.Base(exe)
	}
	return exe
}

// lookPath is exec.LookPath's answer for name, resolved to an absolute
// path without symbolic links ("" when not found).
func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	if p, err = filepath.Abs(p); err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// hasVar reports whether environ sets name.
func hasVar(environ []string, name string) bool {
	return slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
}

// logWriter serialises the log and audit handlers' writes to one stream and
// batches them: records reach the stream within logFlushInterval, and all of
// them on Close. Under load this turns one write syscall per request into
// one per interval.
type logWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLogWriter(w io.Writer, interval time.Duration) *logWriter {
	l := &logWriter{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.flush()
			}
		}
	}()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *logWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Flush()
}

// Close stops the flusher and writes what is buffered.
func (l *logWriter) Close() error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Flush()
}
