package tokens

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm"
)

// The crash and multi-process tests re-run the test binary as a writer
// process: TestMain turns it into one when this variable names a token
// directory.
const (
	childEnv      = "GOHSM_TOKENS_TEST_WRITER"
	childCountEnv = "GOHSM_TOKENS_TEST_WRITER_COUNT"
)

func TestMain(m *testing.M) {
	if root := os.Getenv(staleEnv); root != "" {
		if err := staleChild(root); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if root := os.Getenv(childEnv); root != "" {
		n, _ := strconv.Atoi(os.Getenv(childCountEnv))
		if err := writer(root, n); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writer stores objects in the first token of root (forever when n is 0),
// printing "o ID" after each object is committed and "t N" after the token
// record is committed with UserFailures = N. Every fifth round is a
// Commit of three new objects, printed after the one commit.
func writer(root string, n int) error {
	d, err := Open(root)
	if err != nil {
		return err
	}
	stores, err := d.Stores()
	if err != nil {
		return err
	}
	s := stores[0].(*Store)
	rec, err := s.LoadToken()
	if err != nil {
		return err
	}
	out := os.Stdout // unbuffered: a line printed is in the pipe
	fmt.Fprintln(out, "ready")
	// Wait for "go" so that several writers start at the same moment.
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	for i := 1; n == 0 || i <= n; i++ {
		k := 1
		if i%5 == 0 {
			k = 3
		}
		batch := make([]*hsm.ObjectRecord, k)
		for j := range batch {
			id, err := s.NewObjectID()
			if err != nil {
				return err
			}
			batch[j] = testObject(id, fmt.Sprintf("pid %d round %d", os.Getpid(), i), j%2 == 0)
		}
		if err := s.Commit(&hsm.Change{Put: batch}); err != nil {
			return err
		}
		for _, o := range batch {
			fmt.Fprintf(out, "o %d %s\n", o.ID, o.Attrs[4].Value)
		}
		if i%7 == 0 {
			rec.UserFailures++
			if err := s.SaveToken(rec); err != nil {
				return err
			}
			fmt.Fprintf(out, "t %d\n", rec.UserFailures)
		}
	}
	return d.Close()
}

type writerProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
}

func startWriter(t *testing.T, root string, n int) *writerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+root, childCountEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writerProc{cmd: cmd, stdin: stdin, lines: make(chan string, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	select {
	case l := <-w.lines:
		if l != "ready" {
			t.Fatalf("writer said %q", l)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("writer did not start")
	}
	return w
}

func (w *writerProc) start(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(w.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// committed collects what a finished writer reported: objects by id with
// their labels, and the last token failure count.
func (w *writerProc) committed(objs map[uint64]string) (failures int) {
	<-w.done
	for l := range w.lines {
		// A line cut short by the kill does not parse and is ignored.
		f := strings.SplitN(l, " ", 3)
		switch {
		case len(f) == 3 && f[0] == "o":
			id, err := strconv.ParseUint(f[1], 10, 64)
			if err == nil {
				objs[id] = f[2]
			}
		case len(f) == 2 && f[0] == "t":
			if n, err := strconv.Atoi(f[1]); err == nil {
				failures = n
			}
		}
	}
	return failures
}

func newSharedToken(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, d)
	rec := testToken("shared")
	rec.UserFailures = 0
	if err := s.SaveToken(rec); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return root
}

// verify opens the token as a fresh process would and checks that every
// reported commit is there, intact.
func verify(t *testing.T, root string, want map[uint64]string, failures int) int {
	t.Helper()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stores, err := d.Stores() // runs quick_check
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	s := stores[0].(*Store)
	rec, err := s.LoadToken()
	if err != nil {
		t.Fatal(err)
	}
	// The kill may land after a commit and before its line: the file may
	// be ahead of the report, never behind.
	if rec.UserFailures < failures {
		t.Errorf("token UserFailures %d, reported committed %d", rec.UserFailures, failures)
	}
	got := loadAll(t, s) // checks every row's checksum
	for id, label := range want {
		o := got[id]
		if o == nil {
			t.Errorf("committed object %d missing", id)
			continue
		}
		if w := testObject(id, label, o.Private); !objectsEqual(o, w) {
			t.Errorf("object %d differs from what was written", id)
		}
	}
	return len(got)
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 50 processes")
	}
	root := newSharedToken(t)
	want := map[uint64]string{}
	failures := 0
	rng := rand.New(rand.NewPCG(5, 6))
	const kills = 50
	for i := range kills {
		w := startWriter(t, root, 0)
		w.start(t)
		time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		w.cmd.Wait()
		if f := w.committed(want); f > 0 {
			failures = f
		}
		verify(t, root, want, failures)
		if t.Failed() {
			t.Fatalf("after kill %d", i+1)
		}
	}
	total := verify(t, root, want, failures)
	t.Logf("%d kills: %d objects reported committed, %d in the file, all reported ones intact", kills, len(want), total)
	if len(want) == 0 {
		t.Fatal("no writer committed anything before its kill; the test tested nothing")
	}
}

// Several processes writing one token at once: nothing lost, no id twice.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	root := newSharedToken(t)
	const procs, rounds = 3, 60
	var ws []*writerProc
	for range procs {
		ws = append(ws, startWriter(t, root, rounds))
	}
	for _, w := range ws {
		w.start(t)
	}
	want := map[uint64]string{}
	reported := 0
	for _, w := range ws {
		if err := w.cmd.Wait(); err != nil {
			t.Fatalf("writer: %v", err)
		}
		m := map[uint64]string{}
		w.committed(m)
		for id, l := range m {
			if _, dup := want[id]; dup {
				t.Errorf("id %d handed to two processes", id)
			}
			want[id] = l
		}
		reported += len(m)
	}
	perProc := rounds + 2*(rounds/5)
	if reported != procs*perProc {
		t.Fatalf("%d objects reported, want %d", reported, procs*perProc)
	}
	if n := verify(t, root, want, 0); n != reported {
		t.Errorf("file holds %d objects, %d were written", n, reported)
	}
}
