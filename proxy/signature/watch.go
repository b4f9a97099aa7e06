package signature

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"time"
)

// WatchFile re-reads the secrets file at path every interval until ctx ends
// and installs its keys in v when the content changes. Polling the content
// (rather than watching inodes) follows a Kubernetes Secret volume, which
// swaps a symlink to a new directory. A file that cannot be read or parsed
// keeps the current keys; the reason is logged, the keys never are.
//
// The first read installs what the file holds if it differs from v's keys,
// which were read before WatchFile started, perhaps from an older version of
// the file; "signing keys reloaded" is logged only when the keys change.
func (v *Verifier) WatchFile(ctx context.Context, path string, interval time.Duration, log *slog.Logger) {
	var last []byte // the content last seen; nil until the file has been read
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(path)
		if err != nil {
			if last != nil {
				log.Warn("secrets file unreadable, keeping current keys", "file", path, "error", err.Error())
				last = nil
			}
			continue
		}
		if last != nil && bytes.Equal(data, last) {
			continue
		}
		last = data
		keys, err := parseSecretsFile(data)
		if err != nil {
			log.Warn("secrets file invalid, keeping current keys", "file", path, "error", err.Error(), "current_keys", v.Len())
			continue
		}
		if v.Has(keys) { // as at startup, or only comments changed
			continue
		}
		before := v.Len()
		v.SetKeys(keys)
		log.Info("signing keys reloaded", "file", path, "keys_before", before, "keys", len(keys))
	}
}
