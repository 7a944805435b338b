package tokens_test

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"errors"
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
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// The torture test kills a process that drives the engine (not the raw
// store) at random instants and checks, after every kill, what the issue
// promises: every object whose creating call returned is there once with
// its value, every changed attribute is old or new, no key exists without
// its value, and the file passes integrity_check.
//
// The child is this test binary re-run with -test.run=^TestTortureChild$
// and tortureDirEnv set. It prints an intent line before each call
// ("c? ...", "m? ...", "d? ...") and a confirmation after each call that
// returned CKR_OK ("c ...", "m ...", "d ..."). A write(2) to a pipe is in
// the kernel once it returns, so a SIGKILL loses no printed line; a line
// cut short cannot happen (each is one write) but would be ignored.
const (
	tortureDirEnv  = "GOHSM_TORTURE_DIR"
	tortureSeedEnv = "GOHSM_TORTURE_SEED"
	// tortureKillsEnv sets the number of kills; `make torture` asks for
	// 200 or more. The default keeps `go test ./tokens` short.
	tortureKillsEnv     = "GOHSM_TORTURE_KILLS"
	defaultTortureKills = 40
	tortureKDF          = 10
)

func tortureEngine(dir string) (*hsm.Module, error) {
	st, err := tokens.Open(dir)
	if err != nil {
		return nil, err
	}
	cfg := hsm.DefaultConfig(st)
	cfg.KDFIterations = tortureKDF
	m, err := hsm.New(cfg)
	if err != nil {
		return nil, err
	}
	return m, m.Initialize()
}

// TestTortureChild is the process TestTorture kills; run alone it skips.
func TestTortureChild(t *testing.T) {
	dir := os.Getenv(tortureDirEnv)
	if dir == "" {
		t.Skip("helper process of TestTorture")
	}
	seed, _ := strconv.ParseUint(os.Getenv(tortureSeedEnv), 10, 64)
	if err := tortureChild(dir, seed); err != nil {
		fmt.Fprintln(os.Stderr, "torture child:", err)
		os.Exit(1)
	}
}

func tortureChild(dir string, seed uint64) error {
	m, err := tortureEngine(dir)
	if err != nil {
		return err
	}
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return err
	}
	if err := m.Login(s, ck.CKU_USER, []byte("user-pin")); err != nil {
		return err
	}
	// The keys earlier children left, by CKA_ID.
	type key struct {
		h  ck.ObjectHandle
		id string
	}
	var keys []key
	hs, err := findAll(m, s)
	if err != nil {
		return err
	}
	for _, h := range hs {
		res, err := m.GetAttributeValue(s, h, []ck.AttributeRequest{{Type: ck.CKA_ID, Cap: 256}})
		if err != nil {
			return err
		}
		keys = append(keys, key{h, string(res[0].Value)})
	}
	rng := rand.New(rand.NewPCG(seed, uint64(os.Getpid())))
	out := os.Stdout // unbuffered: one Fprintf is one write(2)
	fmt.Fprintln(out, "ready")
	pid := os.Getpid()
	for n := 0; ; n++ {
		switch r := rng.IntN(100); {
		case r < 50 || len(keys) == 0:
			id := fmt.Sprintf("%d-%d", pid, n)
			val := make([]byte, 16+16*rng.IntN(2))
			for i := range val {
				val[i] = byte(rng.Uint32())
			}
			sensitive := rng.IntN(2) == 0
			fmt.Fprintf(out, "c? %s %x %t\n", id, val, sensitive)
			h, err := m.CreateObject(s, []ck.Attribute{
				{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
				{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
				{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
				{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
				{Type: ck.CKA_SENSITIVE, Value: attr.Bool(sensitive)},
				{Type: ck.CKA_EXTRACTABLE, Value: attr.Bool(!sensitive)},
				{Type: ck.CKA_ENCRYPT, Value: attr.Bool(true)},
				{Type: ck.CKA_DECRYPT, Value: attr.Bool(true)},
				{Type: ck.CKA_ID, Value: []byte(id)},
				{Type: ck.CKA_LABEL, Value: []byte("new-" + id)},
				{Type: ck.CKA_VALUE, Value: val},
			})
			if err != nil {
				return fmt.Errorf("create: %w", err)
			}
			fmt.Fprintf(out, "c %s\n", id)
			keys = append(keys, key{h, id})
		case r < 75:
			k := keys[rng.IntN(len(keys))]
			// Two attributes in one call: both change or neither.
			label, date := fmt.Sprintf("L-%d-%d", pid, n), fmt.Sprintf("2030%02d%02d", 1+n%12, 1+n%28)
			fmt.Fprintf(out, "m? %s %s %s\n", k.id, label, date)
			if err := m.SetAttributeValue(s, k.h, []ck.Attribute{
				{Type: ck.CKA_LABEL, Value: []byte(label)},
				{Type: ck.CKA_END_DATE, Value: []byte(date)},
			}); err != nil {
				return fmt.Errorf("set attribute: %w", err)
			}
			fmt.Fprintf(out, "m %s %s %s\n", k.id, label, date)
		default:
			i := rng.IntN(len(keys))
			k := keys[i]
			fmt.Fprintf(out, "d? %s\n", k.id)
			if err := m.DestroyObject(s, k.h); err != nil {
				return fmt.Errorf("destroy: %w", err)
			}
			fmt.Fprintf(out, "d %s\n", k.id)
			keys = append(keys[:i], keys[i+1:]...)
		}
	}
}

func findAll(m *hsm.Module, s ck.SessionHandle) ([]ck.ObjectHandle, error) {
	if err := m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))}}); err != nil {
		return nil, err
	}
	var all []ck.ObjectHandle
	for {
		hs, err := m.FindObjects(s, 1000)
		if err != nil {
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	return all, m.FindObjectsFinal(s)
}

// tortureKey is what the parent knows of one key from the child's lines.
type tortureKey struct {
	val       []byte
	sensitive bool
	committed bool // its C_CreateObject returned
	// label and date (CKA_END_DATE) are the last values a returned call
	// set; pending holds those of a call the kill may have interrupted.
	label      string
	date       string
	pending    *[2]string
	destroying bool // C_DestroyObject was called and did not return
}

func (k *tortureKey) pendingLabel() (string, string, bool) {
	if k.pending == nil {
		return "", "", false
	}
	return k.pending[0], k.pending[1], true
}

// apply reads one child's lines into keys; destroyed ids are removed.
func applyTortureLines(t *testing.T, lines []string, keys map[string]*tortureKey) {
	t.Helper()
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		k := keys[f[1]]
		switch {
		case f[0] == "c?" && len(f) == 4:
			v, err := hex.DecodeString(f[2])
			if err != nil {
				continue
			}
			keys[f[1]] = &tortureKey{val: v, sensitive: f[3] == "true", label: "new-" + f[1]}
		case f[0] == "c" && k != nil:
			k.committed = true
		case f[0] == "m?" && len(f) == 4 && k != nil:
			k.pending = &[2]string{f[2], f[3]}
		case f[0] == "m" && len(f) == 4 && k != nil:
			k.label, k.date, k.pending = f[2], f[3], nil
		case f[0] == "d?" && k != nil:
			k.destroying = true
		case f[0] == "d" && k != nil:
			delete(keys, f[1])
		}
	}
}

// verifyTorture opens the token as a new process would and checks it
// against what the children reported. It then folds what it found into
// keys: an interrupted call either happened or did not, and the next child
// starts from what is on disk.
func verifyTorture(t *testing.T, dir string, keys map[string]*tortureKey) {
	t.Helper()
	// The store first: integrity_check plus a checksum of every row.
	d, err := tokens.Open(dir)
	check(t, err)
	stores, err := d.Stores()
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	for _, s := range stores {
		if err := s.(*tokens.Store).Check(); err != nil {
			t.Fatalf("integrity check after kill: %v", err)
		}
	}
	check(t, d.Close())

	m, err := tortureEngine(dir)
	check(t, err)
	defer m.Finalize()
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, m.Login(s, ck.CKU_USER, []byte("user-pin")))
	hs, err := findAll(m, s)
	check(t, err)
	seen := map[string]bool{}
	block := []byte("sixteen byte blk")
	for _, h := range hs {
		res, err := m.GetAttributeValue(s, h, []ck.AttributeRequest{
			{Type: ck.CKA_ID, Cap: 256}, {Type: ck.CKA_LABEL, Cap: 256}, {Type: ck.CKA_END_DATE, Cap: 8},
		})
		check(t, err)
		id, label, date := string(res[0].Value), string(res[1].Value), string(res[2].Value)
		if seen[id] {
			t.Fatalf("key %s is on the token twice", id)
		}
		seen[id] = true
		k := keys[id]
		if k == nil {
			t.Fatalf("key %s on the token was never reported created (or was reported destroyed)", id)
		}
		// The value: the engine encrypts with it exactly as the reported
		// value does, and a non-sensitive one reads back equal.
		check(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_ECB}, h))
		got, _, err := m.Encrypt(s, block, 16)
		if err != nil {
			t.Fatalf("key %s has no usable value: %v", id, err)
		}
		c, _ := aes.NewCipher(k.val)
		want := make([]byte, 16)
		c.Encrypt(want, block)
		if !bytes.Equal(got, want) {
			t.Fatalf("key %s encrypts with a value other than the one created", id)
		}
		if !k.sensitive {
			res, err := m.GetAttributeValue(s, h, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
			check(t, err)
			if !bytes.Equal(res[0].Value, k.val) {
				t.Fatalf("key %s reads back a different CKA_VALUE", id)
			}
		}
		// Label and CKA_END_DATE were set together: the pair is the old
		// one or the new one, never a mix.
		pl, pd, pend := k.pendingLabel()
		switch {
		case label == k.label && date == k.date:
		case pend && label == pl && date == pd:
			k.label, k.date = pl, pd
		default:
			t.Fatalf("key %s has label %q end date %q; committed %q %q, in flight %q %q (%v)",
				id, label, date, k.label, k.date, pl, pd, pend)
		}
		k.pending, k.destroying, k.committed = nil, false, true
	}
	for id, k := range keys {
		if seen[id] {
			continue
		}
		if k.committed && !k.destroying {
			t.Fatalf("key %s was created (C_CreateObject returned) and is gone", id)
		}
		delete(keys, id) // an interrupted create or destroy that did not / did happen
	}
}

type tortureChildProc struct {
	cmd   *exec.Cmd
	lines []string
	ready chan struct{}
	done  chan struct{}
}

func startTortureChild(t *testing.T, dir string, seed uint64) *tortureChildProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTortureChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), tortureDirEnv+"="+dir, tortureSeedEnv+"="+strconv.FormatUint(seed, 10))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	check(t, err)
	check(t, cmd.Start())
	p := &tortureChildProc{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				io.Copy(io.Discard, r)
				return
			}
			l = strings.TrimSuffix(l, "\n")
			if l == "ready" {
				close(p.ready)
				continue
			}
			p.lines = append(p.lines, l)
		}
	}()
	return p
}

func tortureKills(t *testing.T) int {
	if v := os.Getenv(tortureKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q", tortureKillsEnv, v)
		}
		return n
	}
	if testing.Short() {
		return 10
	}
	return defaultTortureKills
}

func TestTorture(t *testing.T) {
	kills := tortureKills(t)
	dir := initialised(t)
	keys := map[string]*tortureKey{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var creates, modifies, destroys, beforeReady int
	for i := range kills {
		p := startTortureChild(t, dir, rng.Uint64())
		if rng.IntN(10) == 0 {
			// Now and then kill during exec, open or login.
			time.Sleep(time.Duration(rng.IntN(30_000)) * time.Microsecond)
			select {
			case <-p.ready:
			default:
				beforeReady++
			}
		} else {
			select {
			case <-p.ready:
			case <-p.done:
				p.cmd.Wait()
				t.Fatalf("kill %d: child exited before it was ready", i+1)
			case <-time.After(60 * time.Second):
				p.cmd.Process.Kill()
				t.Fatal("child did not get ready")
			}
			time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		}
		check(t, p.cmd.Process.Signal(syscall.SIGKILL))
		<-p.done
		err := p.cmd.Wait()
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: child ended by itself (%v): it failed", i+1, err)
		}
		for _, l := range p.lines {
			switch {
			case strings.HasPrefix(l, "c "):
				creates++
			case strings.HasPrefix(l, "m "):
				modifies++
			case strings.HasPrefix(l, "d "):
				destroys++
			}
		}
		applyTortureLines(t, p.lines, keys)
		verifyTorture(t, dir, keys)
	}
	t.Logf("%d kills (%d before the child was ready): %d creates, %d modifies, %d destroys returned OK; %d keys on the token, all intact",
		kills, beforeReady, creates, modifies, destroys, len(keys))
	if creates == 0 || modifies == 0 || destroys == 0 {
		t.Fatal("the children did too little before being killed for the test to mean anything")
	}
}

// TestDamagedTokenThroughEngine: a token file with a damaged page makes
// C_Initialize fail with CKR_DEVICE_ERROR (never a token with wrong or
// missing objects).
func TestDamagedTokenThroughEngine(t *testing.T) {
	dir := initialised(t)
	m := engineOn(t, dir)
	s := userSession(t, m)
	for i := range 300 {
		_, err := m.CreateObject(s, []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_DATA))},
			{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
			{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("d-%d", i))},
			{Type: ck.CKA_VALUE, Value: bytes.Repeat([]byte{byte(i)}, 200)},
		})
		check(t, err)
	}
	check(t, m.Finalize())
	path := dir + "/tokens/000001.db"
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	check(t, err)
	fi, err := f.Stat()
	check(t, err)
	// Garbage over a page in the middle of the object table.
	junk := bytes.Repeat([]byte{0x5a}, 4096)
	_, err = f.WriteAt(junk, (fi.Size()/4096/2)*4096)
	check(t, err)
	check(t, f.Close())
	m2, err := tortureEngine(dir)
	if err == nil {
		m2.Finalize()
		t.Fatal("the engine opened a damaged token")
	}
	if !errors.Is(err, ck.CKR_DEVICE_ERROR) {
		t.Fatalf("damaged token: %v, want CKR_DEVICE_ERROR", err)
	}
}
