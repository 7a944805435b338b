package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/pkcs11"
)

// The network comparison runs each target in an agent process of its own:
// the same libgohsm.so is a local module in one process and a remote one in
// another (its mode comes from GOHSM_CONF in the environment the process
// started with), and p11-kit's client reads its server's address from the
// environment too, so two targets cannot share a process. The parent
// (RunRemote) drives the agents one measurement at a time, interleaved, over
// their stdin and stdout: one JSON object per line each way.

// agentRequest is one command to an agent.
type agentRequest struct {
	Cmd      string        `json:"cmd"` // prepare, measure, keep, results, quit
	Op       string        `json:"op,omitempty"`
	Threads  int           `json:"threads,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Warmup   time.Duration `json:"warmup,omitempty"`
}

// agentReply is an agent's answer.
type agentReply struct {
	Ready   bool        `json:"ready,omitempty"`
	Info    *ModuleInfo `json:"info,omitempty"`
	Status  string      `json:"status,omitempty"` // prepare: ok, skip, fail
	Detail  string      `json:"detail,omitempty"`
	Ops     int64       `json:"ops,omitempty"`     // measure: ops timed
	Elapsed int64       `json:"elapsed,omitempty"` // measure: ns
	AllOps  int64       `json:"all_ops,omitempty"` // measure: ops including the warm-up
	Results []Result    `json:"results,omitempty"` // results
	Err     string      `json:"err,omitempty"`
}

// agentMain is `gohsm-bench-remote agent`: load one module, set up or log in
// to its token, answer the parent's commands until quit or end of input.
func agentMain(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	name := fs.String("name", "", "target name")
	path := fs.String("module", "", "PKCS#11 module")
	existing := fs.Bool("existing", false, "log in to the token labelled "+tokenLabel+" (made beforehand) instead of initialising a free slot")
	initOnly := fs.Bool("init-only", false, "initialise the token, set the user PIN, and exit")
	findKeys := fs.Int("find-keys", 1000, "session AES keys that find-key-label searches")
	sessionKeys := fs.Bool("session-keys", false, "make the long-lived keys session objects")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *path == "" {
		return errors.New("agent: -name and -module are required")
	}
	// The protocol has stdout to itself: a module that prints to stdout
	// (a log, a warning) goes to stderr instead.
	proto, err := syscall.Dup(1)
	if err != nil {
		return err
	}
	if err := syscall.Dup3(2, 1, 0); err != nil {
		return err
	}
	out := os.NewFile(uintptr(proto), "agent-protocol")
	enc := json.NewEncoder(out)
	reply := func(r agentReply) error { return enc.Encode(r) }

	m := Module{Name: *name, Path: *path}
	cfg := Config{Modules: []Module{m}, SessionKeys: *sessionKeys, Threads: []int{1}, Duration: time.Second}
	if err := cfg.normalise(); err != nil {
		return err
	}
	var pm *p11Module
	if *existing {
		pm, err = openExistingModule(m, &cfg)
	} else {
		pm, err = openModule(m, &cfg, nil)
	}
	if err != nil {
		reply(agentReply{Err: err.Error()})
		return err
	}
	if *initOnly {
		pm.close()
		return reply(agentReply{Ready: true, Info: &pm.info})
	}
	a := &agentModule{p11Module: pm, findKeys: *findKeys}
	defer a.close()
	if err := reply(agentReply{Ready: true, Info: &pm.info}); err != nil {
		return err
	}
	acc := map[string]*accum{}
	var last *sample
	var lastKey string
	prepared := map[string]error{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var req agentRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		var r agentReply
		switch req.Cmd {
		case "prepare":
			op := remoteOpByName(req.Op)
			if op == nil {
				r.Status, r.Detail = StatusFail, "unknown op "+req.Op
				break
			}
			err := preflight(a, op)
			prepared[op.Name] = err
			r.Status = StatusOK
			if err != nil {
				if why, ok := isSkip(err); ok {
					r.Status, r.Detail = StatusSkip, why
				} else {
					r.Status, r.Detail = StatusFail, err.Error()
				}
			}
		case "measure":
			op := remoteOpByName(req.Op)
			if op == nil {
				r.Err = "unknown op " + req.Op
				break
			}
			if err, ok := prepared[op.Name]; !ok || err != nil {
				r.Err = "op not prepared: " + op.Name
				break
			}
			s, warm := measureWarm(a, op, req.Threads, req.Warmup, req.Duration)
			// Held until the parent keeps it: a measurement another
			// process disturbed is measured again instead.
			last, lastKey = &s, fmt.Sprintf("%s/%d", op.Name, req.Threads)
			r.Ops, r.Elapsed, r.AllOps = s.ops, int64(s.elapsed), s.ops+warm
			if s.err != nil {
				r.Err = s.err.Error()
			}
		case "keep":
			if last == nil {
				r.Err = "nothing to keep"
				break
			}
			if acc[lastKey] == nil {
				acc[lastKey] = &accum{}
			}
			acc[lastKey].add(*last)
			last = nil
		case "results":
			for key, ac := range acc {
				opName, th, _ := strings.Cut(key, "/")
				var threads int
				fmt.Sscan(th, &threads)
				r.Results = append(r.Results, ac.result(*name, opName, threads))
			}
		case "quit":
			return reply(agentReply{Status: StatusOK})
		default:
			r.Err = "unknown command " + req.Cmd
		}
		if err := reply(r); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// measureWarm is runner.go's measure, also counting the warm-up's ops (the
// parent divides the CPU the processes used by all the ops they ran).
func measureWarm(t target, op *Op, threads int, warmup, d time.Duration) (sample, int64) {
	ws := make([]*worker, 0, threads)
	defer func() {
		for _, w := range ws {
			w.close()
		}
	}()
	for i := 0; i < threads; i++ {
		w, err := t.newWorker(op, i)
		if err != nil {
			return sample{err: fmt.Errorf("worker %d: %w", i, err)}, 0
		}
		ws = append(ws, w)
	}
	var warm int64
	if warmup > 0 {
		s := runFor(ws, warmup, false)
		if s.err != nil {
			return s, 0
		}
		warm = s.ops
	}
	return runFor(ws, d, true), warm
}

// openExistingModule loads a module whose token tokenLabel exists already
// (a token p11-kit's server exports: its client shows no free slot to
// initialise) and logs in as user with cfg.UserPIN.
func openExistingModule(m Module, cfg *Config) (*p11Module, error) {
	ctx := pkcs11.New(m.Path)
	if ctx == nil {
		return nil, fmt.Errorf("module %s: cannot load %s", m.Name, m.Path)
	}
	pm := &p11Module{name: m.Name, path: m.Path, ctx: ctx, sessionKey: cfg.SessionKeys, keys: map[string]*p11Keys{}}
	if err := ctx.Initialize(); err != nil {
		ctx.Destroy()
		return nil, fmt.Errorf("module %s: C_Initialize: %w", m.Name, err)
	}
	fail := func(err error) (*p11Module, error) {
		pm.close()
		return nil, fmt.Errorf("module %s: %w", m.Name, err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return fail(fmt.Errorf("C_GetSlotList: %w", err))
	}
	found := false
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && strings.TrimSpace(ti.Label) == tokenLabel {
			pm.slot, found = s, true
			pm.info.TokenModel = strings.TrimSpace(ti.Model)
			break
		}
	}
	if !found {
		return fail(fmt.Errorf("no token labelled %s among %d slots", tokenLabel, len(slots)))
	}
	sh, err := ctx.OpenSession(pm.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fail(fmt.Errorf("C_OpenSession: %w", err))
	}
	pm.setup = sh
	if err := ctx.Login(sh, pkcs11.CKU_USER, cfg.UserPIN); err != nil {
		return fail(fmt.Errorf("C_Login(USER): %w", err))
	}
	ml, err := ctx.GetMechanismList(pm.slot)
	if err != nil {
		return fail(fmt.Errorf("C_GetMechanismList: %w", err))
	}
	pm.mechs = map[uint]bool{}
	for _, x := range ml {
		pm.mechs[x.Mechanism] = true
	}
	pm.sm = map[string]uint{}
	if info, err := ctx.GetInfo(); err == nil {
		pm.info.Manufacturer = strings.TrimSpace(info.ManufacturerID)
		pm.info.Library = strings.TrimSpace(info.LibraryDescription)
		pm.info.LibraryVersion = fmt.Sprintf("%d.%d", info.LibraryVersion.Major, info.LibraryVersion.Minor)
		pm.info.CryptokiVersion = fmt.Sprintf("%d.%d", info.CryptokiVersion.Major, info.CryptokiVersion.Minor)
	}
	pm.info.Name, pm.info.Path = m.Name, m.Path
	return pm, nil
}
