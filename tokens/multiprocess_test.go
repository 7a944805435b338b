package tokens_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Several real processes on one token. Each child is this test binary
// re-run with -test.run=^TestMultiProcessChild$; it answers commands on
// stdin, one line each, with one line on stdout:
//
//	run N      create N token keys labelled "p<child>-<i>" and make one
//	           ECDSA signature with the shared key after each; answers
//	           "sig <msg hex> <sig hex>" lines, then "done"
//	create L   create one token key labelled L; answers "ok"
//	destroy L  destroy the objects labelled L; answers "ok"
//	find L     C_FindObjectsInit by label L; answers "found <n>" after
//	           checking each found key's value; "bad ..." if one is wrong
//	hold L     find the one object labelled L and keep its handle; "held"
//	sensitive  C_SetAttributeValue(held, CKA_SENSITIVE true); "ok"
//	relabel L  C_SetAttributeValue(held, CKA_LABEL L) without searching
//	           first, so on a view that may be stale; "ok" or "err ..."
//	destroyheld C_DestroyObject(held); "ok" or "err ..."
const (
	mpDirEnv   = "GOHSM_MP_DIR"
	mpIndexEnv = "GOHSM_MP_INDEX"
	mpPIN      = "user-pin"
)

// mpValue is the CKA_VALUE of the key labelled label, so that any process
// can check any key.
func mpValue(label string) []byte {
	h := sha256.Sum256([]byte("gohsm multiprocess " + label))
	return h[:]
}

func mpTemplate(label string) []ck.Attribute {
	return []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		{Type: ck.CKA_SENSITIVE, Value: attr.Bool(false)},
		{Type: ck.CKA_EXTRACTABLE, Value: attr.Bool(true)},
		{Type: ck.CKA_LABEL, Value: []byte(label)},
		{Type: ck.CKA_VALUE, Value: mpValue(label)},
	}
}

// mpFind finds by label and checks every found key's value.
func mpFind(m *hsm.Module, s ck.SessionHandle, label string) ([]ck.ObjectHandle, error) {
	if err := m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(label)}}); err != nil {
		return nil, err
	}
	hs, err := m.FindObjects(s, 100)
	if err != nil {
		return nil, err
	}
	if err := m.FindObjectsFinal(s); err != nil {
		return nil, err
	}
	for _, h := range hs {
		res, err := m.GetAttributeValue(s, h, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(res[0].Value, mpValue(label)) {
			return nil, fmt.Errorf("key %q has the wrong value", label)
		}
	}
	return hs, nil
}

// TestMultiProcessChild is a process of TestMultiProcess; run alone it skips.
func TestMultiProcessChild(t *testing.T) {
	dir := os.Getenv(mpDirEnv)
	if dir == "" {
		t.Skip("helper process of TestMultiProcess")
	}
	if err := mpChild(dir, os.Getenv(mpIndexEnv)); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
}

func mpChild(dir, index string) error {
	m, err := tortureEngine(dir)
	if err != nil {
		return err
	}
	defer m.Finalize()
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return err
	}
	if err := m.Login(s, ck.CKU_USER, []byte(mpPIN)); err != nil {
		return err
	}
	if err := m.FindObjectsInit(s, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))},
		{Type: ck.CKA_LABEL, Value: []byte("shared-ec")},
	}); err != nil {
		return err
	}
	priv, err := m.FindObjects(s, 2)
	if err != nil {
		return err
	}
	if err := m.FindObjectsFinal(s); err != nil {
		return err
	}
	if len(priv) != 1 {
		return fmt.Errorf("found %d shared EC keys", len(priv))
	}
	fmt.Println("ready")
	var held ck.ObjectHandle
	answer := func(err error) {
		if err != nil {
			fmt.Printf("err %v\n", err)
		} else {
			fmt.Println("ok")
		}
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "run":
			n, _ := strconv.Atoi(arg)
			for i := range n {
				label := fmt.Sprintf("p%s-%d", index, i)
				if _, err := m.CreateObject(s, mpTemplate(label)); err != nil {
					return fmt.Errorf("create %s: %w", label, err)
				}
				msg := []byte(label)
				if err := m.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv[0]); err != nil {
					return err
				}
				sig, _, err := m.Sign(s, msg, 256)
				if err != nil {
					return fmt.Errorf("sign: %w", err)
				}
				fmt.Printf("sig %x %x\n", msg, sig)
			}
			fmt.Println("done")
		case "create":
			if _, err := m.CreateObject(s, mpTemplate(arg)); err != nil {
				return err
			}
			fmt.Println("ok")
		case "destroy":
			hs, err := mpFind(m, s, arg)
			if err != nil {
				return err
			}
			for _, h := range hs {
				if err := m.DestroyObject(s, h); err != nil {
					return err
				}
			}
			fmt.Println("ok")
		case "find":
			hs, err := mpFind(m, s, arg)
			if err != nil {
				fmt.Printf("bad %v\n", err)
				continue
			}
			fmt.Printf("found %d\n", len(hs))
		case "hold":
			if err := m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(arg)}}); err != nil {
				return err
			}
			hs, err := m.FindObjects(s, 2)
			if err != nil {
				return err
			}
			if err := m.FindObjectsFinal(s); err != nil {
				return err
			}
			if len(hs) != 1 {
				return fmt.Errorf("hold %s: found %d", arg, len(hs))
			}
			held = hs[0]
			fmt.Println("held")
		case "sensitive":
			answer(m.SetAttributeValue(s, held, []ck.Attribute{{Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)}}))
		case "relabel":
			answer(m.SetAttributeValue(s, held, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(arg)}}))
		case "destroyheld":
			answer(m.DestroyObject(s, held))
		default:
			return fmt.Errorf("unknown command %q", cmd)
		}
	}
	return in.Err()
}

type mpProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startMPChild(t *testing.T, dir string, index int) *mpProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), mpDirEnv+"="+dir, mpIndexEnv+"="+strconv.Itoa(index))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	check(t, err)
	out, err := cmd.StdoutPipe()
	check(t, err)
	check(t, cmd.Start())
	p := &mpProc{cmd: cmd, in: in, lines: make(chan string, 1024)}
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
		t.Fatalf("child %d: %s", index, l)
	}
	return p
}

func (p *mpProc) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (p *mpProc) next(t *testing.T) string {
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

func (p *mpProc) ask(t *testing.T, line string) string {
	t.Helper()
	p.send(t, line)
	return p.next(t)
}

// sharedECToken is an initialised token holding one EC P-256 key pair
// labelled "shared-ec"; it returns the public point.
func sharedECToken(t *testing.T) (string, *ecdsa.PublicKey) {
	t.Helper()
	dir := initialised(t)
	m, err := tortureEngine(dir)
	check(t, err)
	defer m.Finalize()
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, m.Login(s, ck.CKU_USER, []byte(mpPIN)))
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	pub, _, err := m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{
			{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
			{Type: ck.CKA_EC_PARAMS, Value: p256},
			{Type: ck.CKA_LABEL, Value: []byte("shared-ec")},
		},
		[]ck.Attribute{
			{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
			{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
			{Type: ck.CKA_SIGN, Value: attr.Bool(true)},
			{Type: ck.CKA_LABEL, Value: []byte("shared-ec")},
		})
	check(t, err)
	res, err := m.GetAttributeValue(s, pub, []ck.AttributeRequest{{Type: ck.CKA_EC_POINT, Cap: 128}})
	check(t, err)
	var point []byte
	if _, err := asn1.Unmarshal(res[0].Value, &point); err != nil {
		t.Fatalf("CKA_EC_POINT: %v", err)
	}
	x, y := elliptic.Unmarshal(elliptic.P256(), point)
	if x == nil {
		t.Fatal("CKA_EC_POINT is not an uncompressed P-256 point")
	}
	return dir, &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
}

// verifyECDSA checks a PKCS#11 ECDSA signature (r || s, 32 bytes each).
func verifyECDSA(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	d := sha256.Sum256(msg)
	return ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

func TestMultiProcess(t *testing.T) {
	const procs, rounds = 3, 40
	dir, pub := sharedECToken(t)
	ps := make([]*mpProc, procs)
	for i := range ps {
		ps[i] = startMPChild(t, dir, i)
	}

	// Each process sees the others' new objects (and their deletions) at
	// its very next C_FindObjectsInit.
	for a := range ps {
		for b := range ps {
			if a == b {
				continue
			}
			label := fmt.Sprintf("from-%d-to-%d", a, b)
			if l := ps[a].ask(t, "create "+label); l != "ok" {
				t.Fatalf("child %d create: %s", a, l)
			}
			if l := ps[b].ask(t, "find "+label); l != "found 1" {
				t.Fatalf("child %d, right after child %d created %q: %s", b, a, label, l)
			}
			if l := ps[a].ask(t, "destroy "+label); l != "ok" {
				t.Fatalf("child %d destroy: %s", a, l)
			}
			if l := ps[b].ask(t, "find "+label); l != "found 0" {
				t.Fatalf("child %d, right after child %d destroyed %q: %s", b, a, label, l)
			}
		}
	}

	// All at once: create and sign with the one shared key.
	for _, p := range ps {
		p.send(t, fmt.Sprintf("run %d", rounds))
	}
	var wg sync.WaitGroup
	errs := make([]string, procs)
	sigs := make([]int, procs)
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range p.lines {
				if l == "done" {
					return
				}
				f := strings.Fields(l)
				if len(f) != 3 || f[0] != "sig" {
					errs[i] = l
					return
				}
				msg, _ := hex.DecodeString(f[1])
				sig, _ := hex.DecodeString(f[2])
				if !verifyECDSA(pub, msg, sig) {
					errs[i] = "bad signature over " + string(msg)
					return
				}
				sigs[i]++
			}
			errs[i] = "child exited"
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Fatalf("child %d: %s", i, e)
		}
		if sigs[i] != rounds {
			t.Fatalf("child %d made %d signatures, want %d", i, sigs[i], rounds)
		}
	}

	// Every process finds every object once, with its value.
	for i, p := range ps {
		for j := range procs {
			for r := range rounds {
				label := fmt.Sprintf("p%d-%d", j, r)
				if l := p.ask(t, "find "+label); l != "found 1" {
					t.Fatalf("child %d looking for %s: %s", i, label, l)
				}
			}
		}
	}
	for _, p := range ps {
		p.in.Close()
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}

	// And so does a fresh process, with nothing else on the token.
	m, err := tortureEngine(dir)
	check(t, err)
	defer m.Finalize()
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	check(t, err)
	check(t, m.Login(s, ck.CKU_USER, []byte(mpPIN)))
	hs, err := findAll(m, s)
	check(t, err)
	if len(hs) != procs*rounds {
		t.Fatalf("%d secret keys on the token, want %d", len(hs), procs*rounds)
	}
	for j := range procs {
		for r := range rounds {
			label := fmt.Sprintf("p%d-%d", j, r)
			got, err := mpFind(m, s, label)
			check(t, err)
			if len(got) != 1 {
				t.Fatalf("%s found %d times", label, len(got))
			}
		}
	}
}

// mpKeyState is what a fresh process finds of the secret keys labelled
// with one of labels: their labels and CKA_SENSITIVE.
func mpKeyState(t *testing.T, dir string, labels ...string) map[string]bool {
	t.Helper()
	m, err := tortureEngine(dir)
	check(t, err)
	defer m.Finalize()
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	check(t, err)
	check(t, m.Login(s, ck.CKU_USER, []byte(mpPIN)))
	out := map[string]bool{}
	for _, l := range labels {
		check(t, m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(l)}}))
		hs, err := m.FindObjects(s, 10)
		check(t, err)
		check(t, m.FindObjectsFinal(s))
		for _, h := range hs {
			if _, dup := out[l]; dup {
				t.Fatalf("two keys labelled %q", l)
			}
			res, err := m.GetAttributeValue(s, h, []ck.AttributeRequest{{Type: ck.CKA_SENSITIVE, Cap: 1}})
			check(t, err)
			out[l] = len(res[0].Value) == 1 && res[0].Value[0] == 1
			if out[l] {
				_, err := m.GetAttributeValue(s, h, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
				if !errors.Is(err, ck.CKR_ATTRIBUTE_SENSITIVE) {
					t.Fatalf("CKA_VALUE of the sensitive key %q: %v", l, err)
				}
			}
		}
	}
	return out
}

// A process working on a stale view must never write it back: B makes a
// key sensitive, then A, which read the key before, relabels it without
// searching first. Whatever A's call answers (the engine may catch up and
// apply the relabel to B's version, or fail), the key stays sensitive; and
// once B destroyed it, A's next relabel must not bring it back.
func TestMultiProcessStaleWriter(t *testing.T) {
	dir, _ := sharedECToken(t)
	a, b := startMPChild(t, dir, 0), startMPChild(t, dir, 1)
	if l := a.ask(t, "create victim"); l != "ok" {
		t.Fatalf("create: %s", l)
	}
	for _, p := range []*mpProc{a, b} {
		if l := p.ask(t, "hold victim"); l != "held" {
			t.Fatalf("hold: %s", l)
		}
	}
	if l := b.ask(t, "sensitive"); l != "ok" {
		t.Fatalf("B sets CKA_SENSITIVE: %s", l)
	}
	relabel := a.ask(t, "relabel victim2")
	t.Logf("stale A's relabel: %s", relabel)
	got := mpKeyState(t, dir, "victim", "victim2")
	if len(got) != 1 {
		t.Fatalf("keys after the stale relabel: %v; want one", got)
	}
	for l, sensitive := range got {
		if !sensitive {
			t.Fatalf("the stale relabel made key %q non-sensitive again", l)
		}
		if relabel == "ok" && l != "victim2" {
			t.Fatalf("relabel answered ok, the key is labelled %q", l)
		}
	}

	// B catches up (any search does) and destroys the key; A, stale
	// again, relabels it.
	if l := b.ask(t, "find nothing-at-all"); l != "found 0" {
		t.Fatalf("B's search: %s", l)
	}
	if l := b.ask(t, "destroyheld"); l != "ok" {
		t.Fatalf("B destroys the key: %s", l)
	}
	t.Logf("stale A's relabel of the destroyed key: %s", a.ask(t, "relabel victim3"))
	if got := mpKeyState(t, dir, "victim", "victim2", "victim3"); len(got) != 0 {
		t.Fatalf("the destroyed key came back: %v", got)
	}
}
