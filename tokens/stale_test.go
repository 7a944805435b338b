package tokens

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm"
)

// Stale writers in real processes. TestMain turns the test binary into a
// staleChild when staleEnv names a token directory. The child keeps its
// own view of the objects, as an engine does, and answers one line per
// command:
//
//	load           view := everything stored; "ok"
//	sync           catch up with ObjectsSince; "ok"
//	put ID L       replace ID with its view's record relabelled L, at the
//	               view's Gen; "ok GEN", "conflict" or "missing"
//	insert ID L    store a new object ID labelled L (Gen 0); "ok GEN" or "conflict"
//	delete ID      delete ID at the view's Gen; "ok" or "conflict"
//	incr ID N      N times: label := label+1 at the view's Gen, catching up
//	               and deciding again on a conflict; "ok CONFLICTS"
const staleEnv = "GOHSM_TOKENS_TEST_STALE"

func staleChild(root string) error {
	d, err := Open(root)
	if err != nil {
		return err
	}
	defer d.Close()
	stores, err := d.Stores()
	if err != nil {
		return err
	}
	s := stores[0].(*Store)
	view := map[uint64]*hsm.ObjectRecord{}
	var gen uint64
	catchUp := func(since uint64) error {
		if since == 0 {
			view = map[uint64]*hsm.ObjectRecord{}
		}
		dl, err := s.ObjectsSince(since, func(o *hsm.ObjectRecord) error { view[o.ID] = o; return nil },
			func(id uint64) error { delete(view, id); return nil })
		gen = dl.Generation
		return err
	}
	label := func(o *hsm.ObjectRecord) string {
		return string(o.Attrs[4].Value)
	}
	answer := func(err error, ok string) error {
		switch {
		case err == nil:
			fmt.Println(ok)
		case errors.Is(err, hsm.ErrConflict):
			fmt.Println("conflict")
		default:
			return err
		}
		return nil
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		var id uint64
		if len(f) > 1 {
			id, _ = strconv.ParseUint(f[1], 10, 64)
		}
		switch {
		case f[0] == "load" || f[0] == "sync":
			since := gen
			if f[0] == "load" {
				since = 0
			}
			if err := catchUp(since); err != nil {
				return err
			}
			fmt.Println("ok")
		case f[0] == "put" && len(f) == 3:
			o := view[id]
			if o == nil {
				fmt.Println("missing")
				continue
			}
			n := relabel(o, f[2])
			err := s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{n}})
			if err == nil {
				view[id] = n
			}
			if err := answer(err, fmt.Sprint("ok ", n.Gen)); err != nil {
				return err
			}
		case f[0] == "insert" && len(f) == 3:
			n := testObject(id, f[2], false)
			err := s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{n}})
			if err == nil {
				view[id] = n
			}
			if err := answer(err, fmt.Sprint("ok ", n.Gen)); err != nil {
				return err
			}
		case f[0] == "delete" && len(f) == 2:
			o := view[id]
			if o == nil {
				fmt.Println("missing")
				continue
			}
			err := s.Commit(&hsm.Change{Delete: []hsm.ObjectVersion{{ID: id, Gen: o.Gen}}})
			if err == nil {
				delete(view, id)
			}
			if err := answer(err, "ok"); err != nil {
				return err
			}
		case f[0] == "incr" && len(f) == 3:
			n, _ := strconv.Atoi(f[2])
			conflicts := 0
			for done := 0; done < n; {
				o := view[id]
				v, err := strconv.Atoi(label(o))
				if err != nil {
					return err
				}
				next := relabel(o, strconv.Itoa(v+1))
				err = s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{next}})
				switch {
				case err == nil:
					view[id] = next
					done++
					// Let the other process in: a waiting writer polls
					// SQLite's busy handler, and without a gap one
					// process would do all its increments in one run.
					time.Sleep(300 * time.Microsecond)
				case errors.Is(err, hsm.ErrConflict):
					conflicts++
					if err := catchUp(gen); err != nil {
						return err
					}
				default:
					return err
				}
			}
			fmt.Println("ok", conflicts)
		default:
			return fmt.Errorf("unknown command %q", in.Text())
		}
	}
	return in.Err()
}

type staleProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startStaleChild(t *testing.T, root string) *staleProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), staleEnv+"="+root)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &staleProc{cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	if l := p.next(t); l != "ready" {
		t.Fatalf("child: %s", l)
	}
	return p
}

func (p *staleProc) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatal("child exited")
		}
		return l
	case <-time.After(60 * time.Second):
		t.Fatal("child did not answer")
	}
	return ""
}

func (p *staleProc) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// ask sends a command and checks the answer's first word.
func (p *staleProc) ask(t *testing.T, line, want string) string {
	t.Helper()
	p.send(t, line)
	l := p.next(t)
	if w, _, _ := strings.Cut(l, " "); w != want {
		t.Fatalf("%q answered %q, want %q", line, l, want)
	}
	return l
}

func TestStaleWriterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	root := newSharedToken(t)
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	stores, err := d.Stores()
	if err != nil {
		t.Fatal(err)
	}
	insert(t, stores[0], testObject(1, "key", false), testObject(2, "other", false), testObject(3, "0", false))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	a, b := startStaleChild(t, root), startStaleChild(t, root)
	a.ask(t, "load", "ok")
	b.ask(t, "load", "ok")

	// B changes the key (makes it sensitive, say); A, stale, writes its
	// old view back: refused. A catches up and decides again.
	b.ask(t, "put 1 sensitive-by-b", "ok")
	a.ask(t, "put 1 relabelled-by-a", "conflict")
	a.ask(t, "sync", "ok")
	final := a.ask(t, "put 1 sensitive-and-relabelled-by-a", "ok")
	// B, stale now, deletes the key at the version it knows: refused.
	b.ask(t, "delete 1", "conflict")
	// B deletes "other"; A (stale) writes it back, then re-creates it.
	b.ask(t, "delete 2", "ok")
	a.ask(t, "put 2 zombie", "conflict")
	a.ask(t, "insert 2 zombie", "conflict")

	// Both increment one counter at once, catching up on each conflict:
	// with compare-and-set no increment is lost.
	const each = 100
	var wg sync.WaitGroup
	answers := make([]string, 2)
	for i, p := range []*staleProc{a, b} {
		p.send(t, fmt.Sprint("incr 3 ", each))
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case answers[i] = <-p.lines:
			case <-time.After(60 * time.Second):
			}
		}()
	}
	wg.Wait()
	for i, l := range answers {
		if !strings.HasPrefix(l, "ok ") {
			t.Fatalf("child %d: incr answered %q", i, l)
		}
	}
	t.Logf("%d increments in each of two processes; conflicts met (and retried): %s and %s",
		each, strings.TrimPrefix(answers[0], "ok "), strings.TrimPrefix(answers[1], "ok "))

	// A fresh reader sees the newest state.
	s, err := openOne(t, root)
	if err != nil {
		t.Fatal(err)
	}
	got := loadAll(t, s)
	wantGen, _ := strconv.ParseUint(strings.TrimPrefix(final, "ok "), 10, 64)
	if len(got) != 2 || got[2] != nil {
		t.Fatalf("fresh reader sees %d objects (object 2: %v)", len(got), got[2])
	}
	if o := got[1]; string(o.Attrs[4].Value) != "sensitive-and-relabelled-by-a" || o.Gen != wantGen {
		t.Fatalf("object 1 = %q at %d; want A's last write at %d", o.Attrs[4].Value, o.Gen, wantGen)
	}
	if l := string(got[3].Attrs[4].Value); l != strconv.Itoa(2*each) {
		t.Fatalf("counter = %s after %d increments", l, 2*each)
	}
}
