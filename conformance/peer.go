package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// Peer processes: the xproc checks need other processes that load the same
// module on the same token store, because what one process may have
// cached about an object is exactly what they test. A peer is this very
// executable started again with peerEnv set (the go test binary, the
// conformance command or `gohsm conformance` alike): the package's init
// sees the variable and turns the process into a peer before main runs. It
// inherits the environment that isolate gave the module (SOFTHSM2_CONF,
// GOHSM_DIR), loads the module, logs in as the user on the suite's token
// and then serves one request at a time: JSON lines on file descriptor 3,
// answers on file descriptor 4 (stdout and stderr stay free for whatever the
// module prints).

// peerEnv carries the peer's peerConfig; set, the process is a peer.
const peerEnv = "GOHSM_CONFORMANCE_PEER"

func init() {
	if spec := os.Getenv(peerEnv); spec != "" {
		os.Exit(peerMain(spec))
	}
}

// peerConfig is what a peer needs to reach the suite's token.
type peerConfig struct {
	Module string `json:"module"`
	Label  string `json:"label"`
	PIN    string `json:"pin"`
}

// peerAttr is an attribute in a request or, for get, in an answer with its
// own CK_RV (one C_GetAttributeValue per attribute).
type peerAttr struct {
	T  uint   `json:"t"`
	V  []byte `json:"v,omitempty"`
	RV uint   `json:"rv,omitempty"`
}

type peerReq struct {
	Op    string     `json:"op"` // find, get, set, copy, destroy
	H     uint       `json:"h,omitempty"`
	Attrs []peerAttr `json:"attrs,omitempty"`
}

type peerResp struct {
	RV      uint       `json:"rv"`
	H       uint       `json:"h,omitempty"`
	Handles []uint     `json:"handles,omitempty"`
	Attrs   []peerAttr `json:"attrs,omitempty"`
	Err     string     `json:"err,omitempty"` // the peer could not start
}

func toAttrs(as []peerAttr) []*pkcs11.Attribute {
	out := make([]*pkcs11.Attribute, len(as))
	for i, a := range as {
		out[i] = &pkcs11.Attribute{Type: a.T, Value: a.V}
	}
	return out
}

func fromAttrs(as []*pkcs11.Attribute) []peerAttr {
	out := make([]peerAttr, len(as))
	for i, a := range as {
		out[i] = peerAttr{T: a.Type, V: a.Value}
	}
	return out
}

// peerMain is the peer process: it answers requests until its input ends.
func peerMain(spec string) int {
	in, out := os.NewFile(3, "peer-requests"), os.NewFile(4, "peer-answers")
	if in == nil || out == nil {
		fmt.Fprintln(os.Stderr, "conformance peer: file descriptors 3 and 4 are not open")
		return 2
	}
	enc := json.NewEncoder(out)
	var cfg peerConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		enc.Encode(peerResp{Err: "bad " + peerEnv + ": " + err.Error()})
		return 2
	}
	ctx, sh, err := peerOpen(cfg)
	if err != nil {
		enc.Encode(peerResp{Err: err.Error()})
		return 1
	}
	if err := enc.Encode(peerResp{}); err != nil {
		return 1
	}
	dec := json.NewDecoder(in)
	for {
		var req peerReq
		if err := dec.Decode(&req); err != nil {
			break
		}
		if err := enc.Encode(peerServe(ctx, sh, req)); err != nil {
			break
		}
	}
	ctx.CloseSession(sh)
	ctx.Finalize()
	ctx.Destroy()
	return 0
}

// peerOpen loads the module, finds the token by label and logs in as the
// user in a new R/W session.
func peerOpen(cfg peerConfig) (*pkcs11.Ctx, pkcs11.SessionHandle, error) {
	ctx := pkcs11.New(cfg.Module)
	if ctx == nil {
		return nil, 0, fmt.Errorf("cannot load %s", cfg.Module)
	}
	if err := ctx.Initialize(); err != nil {
		return nil, 0, fmt.Errorf("C_Initialize: %s", rvName(rvOf(err)))
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return nil, 0, fmt.Errorf("C_GetSlotList: %s", rvName(rvOf(err)))
	}
	for _, id := range slots {
		ti, err := ctx.GetTokenInfo(id)
		if err != nil || strings.TrimRight(ti.Label, " \x00") != cfg.Label {
			continue
		}
		sh, err := ctx.OpenSession(id, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return nil, 0, fmt.Errorf("C_OpenSession: %s", rvName(rvOf(err)))
		}
		if err := ctx.Login(sh, pkcs11.CKU_USER, cfg.PIN); err != nil {
			return nil, 0, fmt.Errorf("C_Login(CKU_USER): %s", rvName(rvOf(err)))
		}
		return ctx, sh, nil
	}
	return nil, 0, fmt.Errorf("no token labelled %q among slots %v", cfg.Label, slots)
}

func peerServe(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, req peerReq) peerResp {
	h := pkcs11.ObjectHandle(req.H)
	switch req.Op {
	case "find":
		if err := ctx.FindObjectsInit(sh, toAttrs(req.Attrs)); err != nil {
			return peerResp{RV: rvOf(err)}
		}
		var all []uint
		for {
			hs, _, err := ctx.FindObjects(sh, 16)
			if err != nil {
				ctx.FindObjectsFinal(sh)
				return peerResp{RV: rvOf(err)}
			}
			if len(hs) == 0 {
				break
			}
			for _, x := range hs {
				all = append(all, uint(x))
			}
		}
		return peerResp{RV: rvOf(ctx.FindObjectsFinal(sh)), Handles: all}
	case "get":
		var out []peerAttr
		for _, a := range req.Attrs {
			as, err := ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{{Type: a.T}})
			pa := peerAttr{T: a.T, RV: rvOf(err)}
			if err == nil {
				pa.V = as[0].Value
			}
			out = append(out, pa)
		}
		return peerResp{Attrs: out}
	case "set":
		return peerResp{RV: rvOf(ctx.SetAttributeValue(sh, h, toAttrs(req.Attrs)))}
	case "copy":
		c, err := ctx.CopyObject(sh, h, toAttrs(req.Attrs))
		return peerResp{RV: rvOf(err), H: uint(c)}
	case "destroy":
		return peerResp{RV: rvOf(ctx.DestroyObject(sh, h))}
	}
	return peerResp{RV: pkcs11.CKR_FUNCTION_NOT_SUPPORTED}
}

// peerTimeout bounds one answer: a peer that hangs (a lock never released
// across processes) fails the check instead of the run.
const peerTimeout = 20 * time.Second

// peer is the suite's end of a peer process.
type peer struct {
	t      *T
	name   string
	cmd    *exec.Cmd
	req    *os.File
	enc    *json.Encoder
	resps  chan peerResp
	output *lockedBuffer
	done   chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 4096 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}

// startPeer starts a peer process named name (A, B, C in the checks) that
// has loaded the module and logged in on the suite's token. It is stopped
// when the check ends.
func (t *T) startPeer(name string) *peer {
	exe, err := os.Executable()
	if err != nil {
		t.failf("peer %s: os.Executable: %v", name, err)
	}
	module, err := filepath.Abs(t.s.path)
	if err != nil {
		t.failf("peer %s: %v", name, err)
	}
	spec, _ := json.Marshal(peerConfig{Module: module, Label: t.s.label, PIN: t.s.opts.UserPIN})
	reqR, reqW, err := os.Pipe()
	if err != nil {
		t.failf("peer %s: %v", name, err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		t.failf("peer %s: %v", name, err)
	}
	p := &peer{t: t, name: name, req: reqW, enc: json.NewEncoder(reqW), resps: make(chan peerResp, 1),
		output: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(exe)
	p.cmd.Env = append(os.Environ(), peerEnv+"="+string(spec))
	p.cmd.ExtraFiles = []*os.File{reqR, respW}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	err = p.cmd.Start()
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		t.failf("peer %s: starting %s: %v", name, exe, err)
	}
	go func() {
		dec := json.NewDecoder(respR)
		for {
			var r peerResp
			if err := dec.Decode(&r); err != nil {
				close(p.resps)
				respR.Close()
				return
			}
			p.resps <- r
		}
	}()
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.cleanup(p.stop)
	if r := p.recv("start-up"); r.Err != "" {
		t.failf("peer %s could not start: %s", name, r.Err)
	}
	return p
}

// stop ends the peer: end of input, then a kill if it does not exit.
func (p *peer) stop() {
	p.req.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *peer) recv(what string) peerResp {
	select {
	case r, ok := <-p.resps:
		if !ok {
			p.cmd.Process.Kill()
			<-p.done
			p.t.failf("peer %s exited during %s (%v): %s", p.name, what, p.cmd.ProcessState, p.output)
		}
		return r
	case <-time.After(peerTimeout):
		p.cmd.Process.Kill()
		p.t.failf("peer %s: no answer to %s within %v", p.name, what, peerTimeout)
	}
	return peerResp{}
}

func (p *peer) call(req peerReq, what string) peerResp {
	if err := p.enc.Encode(req); err != nil {
		p.t.failf("peer %s: sending %s: %v", p.name, what, err)
	}
	return p.recv(what)
}

// find is C_FindObjects in the peer.
func (p *peer) find(what string, tmpl ...*pkcs11.Attribute) []uint {
	r := p.call(peerReq{Op: "find", Attrs: fromAttrs(tmpl)}, "C_FindObjects("+what+")")
	if r.RV != 0 {
		p.t.failf("peer %s: C_FindObjects(%s): %s", p.name, what, rvName(r.RV))
	}
	return r.Handles
}

// findOne finds exactly one object.
func (p *peer) findOne(what string, tmpl ...*pkcs11.Attribute) uint {
	hs := p.find(what, tmpl...)
	if len(hs) != 1 {
		p.t.failf("peer %s: C_FindObjects(%s) found %d objects, want 1", p.name, what, len(hs))
	}
	return hs[0]
}

// get is C_GetAttributeValue of one attribute in the peer.
func (p *peer) get(h, typ uint, what string) ([]byte, uint) {
	r := p.call(peerReq{Op: "get", H: h, Attrs: []peerAttr{{T: typ}}}, "C_GetAttributeValue("+what+")")
	if len(r.Attrs) != 1 {
		p.t.failf("peer %s: malformed answer to C_GetAttributeValue(%s)", p.name, what)
	}
	return r.Attrs[0].V, r.Attrs[0].RV
}

// getBool reads a CK_BBOOL, which must be readable.
func (p *peer) getBool(h, typ uint, what string) bool {
	v, rv := p.get(h, typ, what)
	if rv != 0 {
		p.t.failf("peer %s: C_GetAttributeValue(%s): want CKR_OK, got %s", p.name, what, rvName(rv))
	}
	if len(v) != 1 {
		p.t.failf("peer %s: %s is a CK_BBOOL of %d bytes", p.name, what, len(v))
	}
	return v[0] != 0
}

func (p *peer) set(h uint, what string, a ...*pkcs11.Attribute) uint {
	return p.call(peerReq{Op: "set", H: h, Attrs: fromAttrs(a)}, "C_SetAttributeValue("+what+")").RV
}

func (p *peer) copy(h uint, a ...*pkcs11.Attribute) (uint, uint) {
	r := p.call(peerReq{Op: "copy", H: h, Attrs: fromAttrs(a)}, "C_CopyObject")
	return r.H, r.RV
}
