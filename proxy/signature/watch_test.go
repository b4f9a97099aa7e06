package signature_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/signature"
)

// syncBuffer is a bytes.Buffer the watcher can write while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// secretVolume lays out a directory the way the kubelet does for a Secret
// volume: the file is a symlink through ..data, a symlink to a timestamped
// directory that is swapped atomically on every update.
type secretVolume struct {
	t       *testing.T
	dir     string
	updates int
}

const keysFile = "keys"

func newSecretVolume(t *testing.T, content string) *secretVolume {
	v := &secretVolume{t: t, dir: t.TempDir()}
	v.update(content)
	if err := os.Symlink(filepath.Join("..data", keysFile), filepath.Join(v.dir, keysFile)); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *secretVolume) path() string { return filepath.Join(v.dir, keysFile) }

// update writes content into a new directory and renames a new ..data
// symlink over the old one, as atomic_writer.go does.
func (v *secretVolume) update(content string) {
	v.t.Helper()
	v.updates++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", v.updates, v.updates)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		v.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, ts, keysFile), []byte(content), 0o400); err != nil {
		v.t.Fatal(err)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
}

// remove takes the data away, as when the Secret is deleted.
func (v *secretVolume) remove() {
	v.t.Helper()
	if err := os.Remove(filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}

func TestWatchFileFollowsSecretVolume(t *testing.T) {
	keyA := "whsec_" + base64Of("key A: 0123456789abcdef")
	keyB := "whsec_" + base64Of("key B: 0123456789abcdef")
	keyC := "whsec_" + base64Of("key C: 0123456789abcdef")
	invalid := "whsec_this is not base64 but secret-ish text"

	vol := newSecretVolume(t, "# initial\n"+keyA+"\n")
	keys, err := signature.ReadSecretsFile(vol.path())
	if err != nil {
		t.Fatalf("ReadSecretsFile = %v", err)
	}
	v := signature.NewVerifier(keys)

	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.WatchFile(ctx, vol.path(), 10*time.Millisecond, log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("WatchFile did not return after its context was cancelled")
		}
	})

	// verifies reports whether a message signed with secret verifies now.
	verifies := func(secret string) bool {
		id := "msg_watch"
		now := time.Unix(1_700_000_000, 0)
		body := []byte(`{"eventType":"REFERRAL_CREATED"}`)
		h, err := signature.Extract(svixHeaders(id, "1700000000", signature.Sign(keyOf(t, secret), id, now, body)))
		if err != nil {
			t.Fatalf("Extract = %v", err)
		}
		_, err = v.Verify(body, h)
		return err == nil
	}
	if !verifies(keyA) {
		t.Fatal("key A does not verify before any update")
	}

	vol.update(keyB + "\n")
	eventually(t, "key B verifies after the volume swapped to it", func() bool { return verifies(keyB) })
	if verifies(keyA) {
		t.Error("key A still verifies after the file replaced it with key B")
	}
	eventually(t, "the reload is logged", func() bool { return strings.Contains(logs.String(), "signing keys reloaded") })

	vol.update("# broken edit\n" + invalid + "\n")
	eventually(t, "the invalid file is logged", func() bool { return strings.Contains(logs.String(), "secrets file invalid") })
	if !verifies(keyB) {
		t.Error("key B stopped verifying after an invalid file; the previous keys must stay")
	}
	if !strings.Contains(logs.String(), "key 1 has a space or line break inside it") {
		t.Errorf("log does not give the reason the file is invalid:\n%s", logs.String())
	}

	vol.remove()
	eventually(t, "the unreadable file is logged", func() bool { return strings.Contains(logs.String(), "secrets file unreadable") })
	if !verifies(keyB) {
		t.Error("key B stopped verifying after the file disappeared; the previous keys must stay")
	}

	// The watcher keeps going after the bad states.
	vol.update(keyC + "\n" + keyB + "\n")
	eventually(t, "key C verifies after the volume came back", func() bool { return verifies(keyC) })
	if !verifies(keyB) {
		t.Error("key B, the second key of the new file, does not verify")
	}
	if v.Len() != 2 {
		t.Errorf("Len = %d, want 2", v.Len())
	}

	out := logs.String()
	for _, secret := range []string{keyA, keyB, keyC, invalid} {
		for _, part := range []string{secret, strings.TrimPrefix(secret, "whsec_")} {
			if strings.Contains(out, part) {
				t.Errorf("log contains key text %q:\n%s", part, out)
			}
		}
	}
	if strings.Contains(out, "secret-ish") {
		t.Errorf("log contains part of the invalid key:\n%s", out)
	}
}

// base64Of encodes s as a secret's key part.
func base64Of(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// loadedVolume is a Secret volume holding content and a Verifier with the
// keys read from it, as at startup.
func loadedVolume(t *testing.T, content string) (*secretVolume, *signature.Verifier) {
	t.Helper()
	vol := newSecretVolume(t, content)
	keys, err := signature.ReadSecretsFile(vol.path())
	if err != nil {
		t.Fatalf("ReadSecretsFile = %v", err)
	}
	return vol, signature.NewVerifier(keys)
}

// watch runs v.WatchFile on path until the test ends and returns its log.
func watch(t *testing.T, v *signature.Verifier, path string, interval time.Duration) *syncBuffer {
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.WatchFile(ctx, path, interval, slog.New(slog.NewJSONHandler(logs, nil)))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return logs
}

func TestWatchFileInstallsFileChangedBeforeStart(t *testing.T) {
	// The keys were loaded at startup, then the Secret was rotated before the
	// watcher's first read: the watcher must still install the new key.
	keyA := "whsec_" + base64Of("key A: 0123456789abcdef")
	keyB := "whsec_" + base64Of("key B: 0123456789abcdef")
	vol, v := loadedVolume(t, keyA+"\n")
	vol.update(keyB + "\n")
	watch(t, v, vol.path(), 10*time.Millisecond)

	id, now, body := "msg_rotated", time.Unix(1_700_000_000, 0), []byte(`{}`)
	h, err := signature.Extract(svixHeaders(id, "1700000000", signature.Sign(keyOf(t, keyB), id, now, body)))
	if err != nil {
		t.Fatalf("Extract = %v", err)
	}
	eventually(t, "key B verifies", func() bool {
		_, err := v.Verify(body, h)
		return err == nil
	})
}

func TestWatchFileQuietWhileKeysUnchanged(t *testing.T) {
	// The watcher's first read finds the keys loaded at startup, and a
	// later update changes only a comment: neither is a reload to log.
	// Then a real change is logged once.
	keyA := "whsec_" + base64Of("key A: 0123456789abcdef")
	keyB := "whsec_" + base64Of("key B: 0123456789abcdef")
	vol, v := loadedVolume(t, keyA+"\n")
	logs := watch(t, v, vol.path(), 5*time.Millisecond)

	time.Sleep(50 * time.Millisecond) // several polls of the unchanged file
	vol.update("# rotated nothing\n" + keyA + "\n")
	time.Sleep(50 * time.Millisecond)
	if got := logs.String(); got != "" {
		t.Fatalf("logged %q for keys that did not change", got)
	}
	vol.update(keyA + "\n" + keyB + "\n")
	eventually(t, "the change is logged", func() bool { return strings.Contains(logs.String(), "signing keys reloaded") })
	if n := strings.Count(logs.String(), "signing keys reloaded"); n != 1 {
		t.Errorf("logged %d reloads for one change: %s", n, logs.String())
	}
	if !v.Has([][]byte{keyOf(t, keyA), keyOf(t, keyB)}) {
		t.Error("the new keys are not installed")
	}
}
