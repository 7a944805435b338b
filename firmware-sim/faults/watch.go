package faults

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A Watcher keeps an Injector on a plan file: the appliance's way to change
// its plan at run time (`gohsm faults set`, or an edit and SIGHUP). It
// reads the file every interval and at each Reload (the appliance calls it
// on SIGHUP); a changed file replaces the running plan (counters from
// zero), a file that does not parse is logged and the running plan stays,
// and a missing file is the empty plan.
type Watcher struct {
	path string
	inj  *Injector
	logf func(format string, args ...any)
	mu   sync.Mutex
	last []byte // the file's bytes last applied; nil: none (the empty plan)
	bad  []byte // bytes that did not parse, reported once
	stop chan struct{}
	done chan struct{}
}

// Watch applies the file at path to inj now and whenever it changes (read
// every interval; 0: only at Reload). A file that exists and does not parse
// is an error here; later it is logged and ignored.
func Watch(path string, inj *Injector, interval time.Duration, logf func(format string, args ...any)) (*Watcher, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	w := &Watcher{path: path, inj: inj, logf: logf, stop: make(chan struct{}), done: make(chan struct{})}
	if err := w.Reload(); err != nil {
		return nil, err
	}
	go w.loop(interval)
	return w, nil
}

func (w *Watcher) loop(interval time.Duration) {
	defer close(w.done)
	if interval <= 0 {
		<-w.stop
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if err := w.Reload(); err != nil {
				w.logf("%v (the running plan stays)", err)
			}
		}
	}
}

// Reload reads the file now and applies it if it changed.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := os.ReadFile(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		if w.last != nil {
			w.inj.SetPlan(nil)
			w.last = nil
			w.logf("fault plan %s: removed; no faults now", w.path)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("fault plan: %w", err)
	}
	if (w.last != nil && bytes.Equal(data, w.last)) || (w.bad != nil && bytes.Equal(data, w.bad)) {
		return nil
	}
	p, err := Parse(data)
	if err != nil {
		w.bad = data
		return fmt.Errorf("fault plan %s: %w", w.path, err)
	}
	w.bad = nil
	w.inj.SetPlan(p)
	w.last = data
	sum := sha256.Sum256(data)
	w.logf("fault plan %s (sha256 %s): %d rule(s), %d event(s), seed %d, key-sync lag %v ms",
		w.path, hex.EncodeToString(sum[:8]), len(p.Rules), len(p.Events), p.Seed, p.KeySyncLagMS)
	return nil
}

// Stop ends the polling.
func (w *Watcher) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// WriteFile checks a plan and puts it at path atomically (a temporary file
// in the same directory, then a rename), so a Watcher never reads half a
// plan: what `gohsm faults set` does.
func WriteFile(path string, data []byte) (*Plan, error) {
	p, err := Parse(data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".faults-*.json")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	return p, os.Rename(tmp.Name(), path)
}
