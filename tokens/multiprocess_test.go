package tokens_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
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
