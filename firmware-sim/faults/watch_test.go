package faults

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The appliance's run-time plan: a file, read at Reload and every interval;
// WriteFile (gohsm faults set) refuses a bad plan and replaces atomically.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "faults.json")
	var mu sync.Mutex
	var logs []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, format)
	}
	inj := New(nil)
	// A missing file is the empty plan; a bad one stops the start.
	w, err := Watch(path, inj, 0, logf)
	if err != nil || len(inj.Plan().Rules) != 0 {
		t.Fatalf("missing file: %v", err)
	}
	w.Stop()
	os.WriteFile(path, []byte(`{"rules": [{"function": "C_Nope", "rv": 48}]}`), 0o600)
	if _, err := Watch(path, inj, 0, logf); err == nil || !strings.Contains(err.Error(), "C_Nope") {
		t.Fatalf("bad file at start: %v", err)
	}
	if _, err := WriteFile(path, []byte(`{"rules": [{"function": "C_Sign", "nth": 1, "rv": "CKR_DEVICE_ERROR"}]}`)); err != nil {
		t.Fatal(err)
	}
	w, err = Watch(path, inj, 20*time.Millisecond, logf)
	if err != nil || len(inj.Plan().Rules) != 1 {
		t.Fatalf("start: %v %+v", err, inj.Plan())
	}
	defer w.Stop()
	// A bad plan is refused by WriteFile and leaves the file as it was.
	if _, err := WriteFile(path, []byte(`{"rules": [{"function": "C_Sign"}]}`)); err == nil {
		t.Fatal("WriteFile took a plan that does nothing")
	}
	// A new plan applies at the next read.
	if _, err := WriteFile(path, []byte(`{"rules": [{"function": "C_Sign", "latency_ms": 1}, {"function": "C_Verify", "latency_ms": 1}]}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(inj.Plan().Rules) == 2 })
	// An edit that does not parse is reported and the running plan stays.
	os.WriteFile(path, []byte(`{`), 0o600)
	if err := w.Reload(); err == nil {
		t.Fatal("Reload took a broken file")
	}
	if len(inj.Plan().Rules) != 2 {
		t.Fatal("a broken file replaced the plan")
	}
	// Removing the file is the empty plan.
	os.Remove(path)
	waitFor(t, func() bool { return len(inj.Plan().Rules) == 0 })
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".faults-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
