package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The network comparison (make bench-remote, docs/bench-remote.md): the
// same ops through the C ABI on
//
//	local           libgohsm.so in the application's process
//	remote          libgohsm.so in remote mode, against `gohsm serve --dev` on loopback
//	p11kit-softhsm  SoftHSMv2 re-exported by p11-kit-server on a unix socket, read through p11-kit-client.so
//	p11kit-gohsm    libgohsm.so (local mode) re-exported the same way
//
// each in an agent process of its own (remote_agent.go), measured one at a
// time and interleaved, with the CPU every process on both sides used.

// Target names of the network comparison.
const (
	TargetLocal         = "local"
	TargetRemote        = "remote"
	TargetP11KitSoftHSM = "p11kit-softhsm"
	TargetP11KitGohsm   = "p11kit-gohsm"
)

// RemoteTargetNames lists every target, in report order.
var RemoteTargetNames = []string{TargetLocal, TargetRemote, TargetP11KitSoftHSM, TargetP11KitGohsm}

// RemoteOpNames are the ops of the comparison, in report order.
var RemoteOpNames = []string{"ecdsa-p256-sign", "aes256-gcm-enc-64", "aes256-cbc-enc-64", "aes256-ecb-enc-64",
	"rsa2048-pkcs1-sign", "find-key-label"}

// RemoteConfig is one run of the network comparison.
type RemoteConfig struct {
	Root         string // repository root: the Go client benchmarks run there
	Gohsm        string // build/gohsm
	Module       string // build/libgohsm.so
	SoftHSM      string // libsofthsm2.so
	P11KitServer string // /usr/libexec/p11-kit/p11-kit-server
	P11KitClient string // p11-kit-client.so
	Softhsm2Util string // softhsm2-util (unused: the agent initialises every token itself)

	Targets  []string
	Ops      []string
	Threads  []int
	Duration time.Duration
	Warmup   time.Duration
	Repeats  int
	FindKeys int

	// GoBench runs the Go client's benchmarks (firmware-sim/client) with
	// GoCmd, GoBenchCount times each, for GoBenchTime (3 s: at 1 s a batch
	// benchmark is some 30 iterations, and its first ones, which grow the
	// heap and the goroutines' stacks, moved its result by up to 40% from
	// run to run).
	GoBench      bool
	GoCmd        string
	GoBenchCount int
	GoBenchTime  string

	// Perf profiles the appliance and the client (perf record) during
	// one extra measurement of each ProfileOps op at the largest thread
	// count, after the timed ones.
	Perf       string // path of perf, "" for none
	ProfileOps []string

	// Quiet is how many CPUs other processes may use during a
	// measurement; a measurement they disturbed more is made again, while
	// RetryBudget (the total time spent on such repeats) lasts.
	Quiet       float64
	RetryBudget time.Duration

	// CHost, if set, is bench/chost/csrc/chost.c built: a C application
	// signing with C_SignInit + C_Sign (no size query) from 1 to the largest
	// thread count, run on local and remote after the timed ops.
	CHost        string
	CHostSeconds int

	// Dir holds the stores, sockets, logs and profiles; "" is a temporary
	// directory, removed afterwards.
	Dir string
	// Commands reproduce the run (recorded in the report).
	Commands []string
	Logf     func(format string, args ...any)
}

// DefaultRemoteConfig is the run behind docs/bench-remote.md: about six
// minutes on two cores, up to two more when other processes disturb
// measurements, which are then made again.
func DefaultRemoteConfig(root string) RemoteConfig {
	return RemoteConfig{
		Root:         root,
		Gohsm:        filepath.Join(root, "build", "gohsm"),
		Module:       filepath.Join(root, "build", "libgohsm.so"),
		SoftHSM:      "/usr/lib/softhsm/libsofthsm2.so",
		P11KitServer: "/usr/libexec/p11-kit/p11-kit-server",
		P11KitClient: "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
		Targets:      RemoteTargetNames,
		Ops:          RemoteOpNames,
		Threads:      []int{1, 8, 32},
		Duration:     time.Second,
		Warmup:       200 * time.Millisecond,
		Repeats:      3,
		Quiet:        0.25,
		RetryBudget:  2 * time.Minute,
		FindKeys:     1000,
		GoBench:      true,
		GoCmd:        "go",
		GoBenchCount: 3,
		GoBenchTime:  "3s",
		ProfileOps:   []string{"ecdsa-p256-sign"},
		CHostSeconds: 1,
	}
}

// proc is a process the run started (an agent, the appliance, a p11-kit
// server); it is ended by its id.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
}

func startProc(name, logPath string, env []string, argv ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	// A group of its own: p11-kit-server's per-connection children are
	// ended with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lf.Close()
	return &proc{name: name, cmd: cmd, log: logPath}, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the process group it leads, waits up to grace, then
// SIGKILLs that group.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.cmd.Process == nil {
		return
	}
	pgid := p.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}

// agent is one target's agent process.
type agent struct {
	name    string
	cmd     *exec.Cmd
	in      io.WriteCloser
	replies chan agentReply
	errc    chan error
	log     string
	info    ModuleInfo
}

func startAgent(self, name, module, logPath string, env []string, extra ...string) (*agent, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	args := append([]string{"agent", "-name", name, "-module", module}, extra...)
	cmd := exec.Command(self, args...)
	cmd.Env = env
	cmd.Stderr = lf
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("agent %s: %w", name, err)
	}
	a := &agent{name: name, cmd: cmd, in: in, replies: make(chan agentReply), errc: make(chan error, 1), log: logPath}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var r agentReply
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				a.errc <- fmt.Errorf("agent %s: %w: %q", name, err, sc.Text())
				return
			}
			a.replies <- r
		}
		a.errc <- fmt.Errorf("agent %s ended: %v", name, sc.Err())
	}()
	r, err := a.wait(3 * time.Minute)
	if err != nil {
		a.kill()
		return nil, fmt.Errorf("%w\n%s", err, tailFile(logPath))
	}
	if !r.Ready {
		a.kill()
		return nil, fmt.Errorf("agent %s: %s\n%s", name, r.Err, tailFile(logPath))
	}
	if r.Info != nil {
		a.info = *r.Info
	}
	return a, nil
}

func tailFile(path string) string {
	p := proc{log: path}
	return p.tail()
}

func (a *agent) wait(d time.Duration) (agentReply, error) {
	select {
	case r := <-a.replies:
		return r, nil
	case err := <-a.errc:
		return agentReply{}, err
	case <-time.After(d):
		return agentReply{}, fmt.Errorf("agent %s: no answer within %v", a.name, d)
	}
}

func (a *agent) call(req agentRequest, limit time.Duration) (agentReply, error) {
	b, _ := json.Marshal(req)
	if _, err := a.in.Write(append(b, '\n')); err != nil {
		return agentReply{}, fmt.Errorf("agent %s: %w", a.name, err)
	}
	return a.wait(limit)
}

func (a *agent) pid() int { return a.cmd.Process.Pid }

// quit asks the agent to finalise its module and waits for it.
func (a *agent) quit() {
	if _, err := a.call(agentRequest{Cmd: "quit"}, 30*time.Second); err != nil {
		a.kill()
		return
	}
	a.in.Close()
	done := make(chan struct{})
	go func() { a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		a.kill()
	}
}

func (a *agent) kill() {
	_ = a.cmd.Process.Kill()
	_ = a.cmd.Wait()
}

// remoteTarget is a target with its agent and the processes that serve it.
type remoteTarget struct {
	name   string
	agent  *agent
	server func() []int // serving-side processes whose CPU is counted (none for local)
}

// cleanEnv is the environment without the variables that choose a module's
// configuration.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOHSM_CONF", "GOHSM_DIR", "SOFTHSM2_CONF", "P11_KIT_SERVER_ADDRESS", envBenchDir, envBenchTmp:
			continue
		}
		env = append(env, kv)
	}
	return env
}

// RunRemote runs the network comparison.
func RunRemote(cfg RemoteConfig) (rep *RemoteReport, err error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	logf := cfg.Logf
	for _, o := range cfg.Ops {
		if remoteOpByName(o) == nil {
			return nil, fmt.Errorf("unknown op %q", o)
		}
	}
	for _, t := range cfg.Targets {
		if !slices.Contains(RemoteTargetNames, t) {
			return nil, fmt.Errorf("unknown target %q (have %s)", t, strings.Join(RemoteTargetNames, ", "))
		}
	}
	if cfg.Repeats < 1 {
		cfg.Repeats = 1
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// p11-kit-server looks a relative module path up in its own directory.
	for _, p := range []*string{&cfg.Root, &cfg.Gohsm, &cfg.Module, &cfg.SoftHSM, &cfg.P11KitServer, &cfg.P11KitClient, &cfg.CHost} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, err
			}
		}
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "gohsm-bench-remote-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	started := time.Now()
	rep = &RemoteReport{Meta: RemoteMeta{
		Version: ReportVersion, Started: started.UTC().Truncate(time.Second), GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, CPU: cpuModel(), NumCPU: runtime.NumCPU(),
		Kernel: kernelRelease(), LoadStart: loadAvg(), Threads: cfg.Threads,
		DurationMs: cfg.Duration.Milliseconds(), WarmupMs: cfg.Warmup.Milliseconds(), Repeats: cfg.Repeats,
		FindKeys: cfg.FindKeys, Commands: cfg.Commands, P11KitVersion: debVersion("p11-kit"), Quiet: cfg.Quiet,
		SoftHSMVersion: debVersion("softhsm2"),
	}}

	if cal, err := calibrate(self); err != nil {
		logf("calibration: %v", err)
	} else {
		rep.Meta.Calibration = &cal
		logf("calibration: a system call %.2f µs, a round trip between two processes %.1f µs (%.1f µs of CPU)",
			cal.SyscallNs/1e3, cal.PingPongNs/1e3, cal.PingPongCPUNs/1e3)
	}

	var procs []*proc
	var targets []*remoteTarget
	defer func() {
		for _, t := range targets {
			t.agent.quit()
		}
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop(15 * time.Second)
		}
	}()
	findArg := fmt.Sprintf("-find-keys=%d", cfg.FindKeys)
	base := cleanEnv()
	with := func(kv ...string) []string { return append(slices.Clone(base), kv...) }

	// localConf writes a local-mode configuration on its own store.
	localConf := func(sub string) (string, string, error) {
		d := filepath.Join(dir, sub)
		store := filepath.Join(d, "store")
		if err := os.MkdirAll(store, 0o700); err != nil {
			return "", "", err
		}
		conf := filepath.Join(d, "gohsm.conf")
		return conf, store, os.WriteFile(conf, fmt.Appendf(nil, "mode = local\ndir = %s\n", store), 0o600)
	}

	// p11kit starts p11-kit-server on a token made beforehand by an
	// init-only agent loading the provider directly.
	p11kit := func(name, provider string, env []string) (*remoteTarget, error) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		ia, err := startAgent(self, name+"-init", provider, filepath.Join(d, "init.log"), env, "-init-only")
		if err != nil {
			return nil, err
		}
		ia.cmd.Wait()
		sock := filepath.Join(d, "p11kit.sock")
		p, err := startProc(name+" p11-kit-server", filepath.Join(d, "p11-kit-server.log"), env,
			cfg.P11KitServer, "--provider", provider, "-f", "-n", sock, "pkcs11:token="+tokenLabel)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		if err := waitFor(10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }); err != nil {
			return nil, fmt.Errorf("%s: no socket %s: %w\n%s", p.name, sock, err, p.tail())
		}
		a, err := startAgent(self, name, cfg.P11KitClient, filepath.Join(d, "agent.log"),
			with("P11_KIT_SERVER_ADDRESS=unix:path="+sock), "-existing", findArg)
		if err != nil {
			return nil, err
		}
		pid := p.pid()
		return &remoteTarget{name: name, agent: a, server: func() []int { return append([]int{pid}, childPIDs(pid)...) }}, nil
	}

	var appliancePID int
	chostEnv := map[string][]string{} // target -> the environment a C application of it gets
	for _, name := range cfg.Targets {
		var t *remoteTarget
		switch name {
		case TargetLocal:
			conf, store, err := localConf(name)
			if err != nil {
				return nil, err
			}
			chostEnv[name] = with("GOHSM_CONF="+conf, "GOHSM_DIR="+store)
			a, err := startAgent(self, name, cfg.Module, filepath.Join(dir, name, "agent.log"), chostEnv[name], findArg)
			if err != nil {
				return nil, err
			}
			t = &remoteTarget{name: name, agent: a, server: func() []int { return nil }}
		case TargetRemote:
			d := filepath.Join(dir, "appliance")
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, err
			}
			p, err := startProc("gohsm serve", filepath.Join(dir, "appliance.log"), base,
				cfg.Gohsm, "serve", "--dev", "--dir", d, "--listen", "127.0.0.1:0", "--module", cfg.Module)
			if err != nil {
				return nil, err
			}
			procs = append(procs, p)
			rc := filepath.Join(d, "remote.conf")
			if err := waitFor(30*time.Second, func() bool { _, err := os.Stat(rc); return err == nil }); err != nil {
				return nil, fmt.Errorf("gohsm serve: no %s: %w\n%s", rc, err, p.tail())
			}
			appliancePID = p.pid()
			chostEnv[name] = with("GOHSM_CONF=" + rc)
			a, err := startAgent(self, name, cfg.Module, filepath.Join(dir, "remote-agent.log"), chostEnv[name], findArg)
			if err != nil {
				return nil, err
			}
			pid := appliancePID
			t = &remoteTarget{name: name, agent: a, server: func() []int { return []int{pid} }}
		case TargetP11KitSoftHSM:
			d := filepath.Join(dir, name)
			env, err := softhsmEnv(d)
			if err != nil {
				return nil, err
			}
			if t, err = p11kit(name, cfg.SoftHSM, append(slices.Clone(base), env...)); err != nil {
				return nil, err
			}
		case TargetP11KitGohsm:
			conf, store, err := localConf(name)
			if err != nil {
				return nil, err
			}
			if t, err = p11kit(name, cfg.Module, with("GOHSM_CONF="+conf, "GOHSM_DIR="+store)); err != nil {
				return nil, err
			}
		}
		targets = append(targets, t)
		rep.Targets = append(rep.Targets, RemoteTargetInfo{Name: name, Title: remoteTargetTitle(name), Module: t.agent.info})
		logf("target %s ready: %s %s", name, t.agent.info.Manufacturer, t.agent.info.Library)
	}
	_ = appliancePID

	// Preflight every (target, op) once, untimed.
	runnable := map[string][]*remoteTarget{}
	for _, o := range cfg.Ops {
		op := remoteOpByName(o)
		rep.Ops = append(rep.Ops, *op)
		for _, t := range targets {
			r, err := t.agent.call(agentRequest{Cmd: "prepare", Op: o}, 5*time.Minute)
			if err != nil {
				return nil, err
			}
			c := Check{Target: t.name, Op: o, Status: r.Status, Detail: r.Detail}
			rep.Checks = append(rep.Checks, c)
			if c.Status == StatusOK {
				runnable[o] = append(runnable[o], t)
			} else {
				logf("%s %s: %s: %s", t.name, o, c.Status, c.Detail)
			}
		}
	}

	total := 0
	for _, o := range cfg.Ops {
		total += len(runnable[o]) * len(cfg.Threads) * cfg.Repeats
	}
	step, retried, disturbed := 0, 0, 0
	var spent time.Duration
	cpu := map[string]*cpuAccum{}
	limit := cfg.Duration + cfg.Warmup + 3*time.Minute
	for _, o := range cfg.Ops {
		ts := runnable[o]
		for _, threads := range cfg.Threads {
			for r := 0; r < cfg.Repeats; r++ {
				for k := range ts {
					t := ts[(k+r)%len(ts)]
					step++
					var u cpuUse
					var rate float64
					for try := 1; ; try++ {
						t0 := time.Now()
						if u, rate, err = measureRemote(t, o, threads, cfg, limit); err != nil {
							return nil, err
						}
						other := u.otherCPUs()
						if other <= cfg.Quiet {
							break
						}
						if spent+time.Since(t0) > cfg.RetryBudget || try == 4 {
							disturbed++
							logf("[%d/%d] %s %s t=%d: other processes used %.2f CPUs; kept (retry budget or tries spent)",
								step, total, o, t.name, threads, other)
							break
						}
						spent += time.Since(t0)
						retried++
						logf("[%d/%d] %s %s t=%d: other processes used %.2f CPUs; measuring again", step, total, o, t.name, threads, other)
						time.Sleep(time.Second)
						spent += time.Second
					}
					if _, err := t.agent.call(agentRequest{Cmd: "keep"}, time.Minute); err != nil {
						return nil, err
					}
					key := fmt.Sprintf("%s/%s/%d", t.name, o, threads)
					if cpu[key] == nil {
						cpu[key] = &cpuAccum{}
					}
					cpu[key].add(u)
					logf("[%d/%d] %s %s t=%d r=%d/%d: %s ops/s (client %.0f µs/op, server %.0f µs/op, machine %.2f CPUs busy)",
						step, total, o, t.name, threads, r+1, cfg.Repeats, fmtRate(rate),
						u.clientPerOp(), u.serverPerOp(), u.machineBusy())
				}
			}
		}
	}
	rep.Meta.Measurements, rep.Meta.Retried, rep.Meta.Disturbed = step, retried, disturbed
	for _, t := range targets {
		r, err := t.agent.call(agentRequest{Cmd: "results"}, time.Minute)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, r.Results...)
	}
	for key, c := range cpu {
		parts := strings.SplitN(key, "/", 3)
		var th int
		fmt.Sscan(parts[2], &th)
		rep.CPU = append(rep.CPU, c.result(parts[0], parts[1], th))
	}
	sortRemote(rep)

	if cfg.CHost != "" && chostEnv[TargetLocal] != nil && chostEnv[TargetRemote] != nil {
		res, err := runCHost(cfg, chostEnv, logf)
		if err != nil {
			logf("C host: %v", err)
			rep.Notes = append(rep.Notes, "C host run failed: "+err.Error())
		}
		rep.CHost = res
	}

	// Profiles: one more measurement per profiled op, on remote at the
	// largest thread count, with perf attached to both sides.
	if cfg.Perf != "" {
		var remote *remoteTarget
		for _, t := range targets {
			if t.name == TargetRemote {
				remote = t
			}
		}
		maxT := slices.Max(cfg.Threads)
		for _, o := range cfg.ProfileOps {
			if remote == nil || !slices.Contains(runnable[o], remote) {
				continue
			}
			p, err := profileRemote(cfg, dir, remote, o, maxT, limit)
			if err != nil {
				logf("perf: %v", err)
				rep.Notes = append(rep.Notes, "perf profile of "+o+" failed: "+err.Error())
				continue
			}
			rep.Profiles = append(rep.Profiles, p...)
		}
	}

	// The agents and servers go before the Go client benchmarks, which
	// need the machine to themselves.
	for _, t := range targets {
		t.agent.quit()
	}
	targets = nil
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(15 * time.Second)
	}
	procs = nil
	if cfg.GoBench {
		logf("Go client benchmarks (firmware-sim/client), %d runs each", cfg.GoBenchCount)
		gb, cmdline, err := runGoClientBench(cfg, dir, logf)
		if err != nil {
			return nil, err
		}
		rep.GoBench, rep.Meta.GoBenchCommand = gb, cmdline
	}
	rep.Meta.Seconds = time.Since(started).Round(time.Second).Seconds()
	rep.Meta.LoadEnd = loadAvg()
	return rep, nil
}

// measureRemote runs one measurement on t and returns the CPU its processes
// used and the ops/s.
func measureRemote(t *remoteTarget, op string, threads int, cfg RemoteConfig, limit time.Duration) (cpuUse, float64, error) {
	client := []int{t.agent.pid()}
	server := t.server()
	c0, s0, m0 := procCPU(client), procCPU(server), machineCPU()
	r, err := t.agent.call(agentRequest{Cmd: "measure", Op: op, Threads: threads, Duration: cfg.Duration, Warmup: cfg.Warmup}, limit)
	if err != nil {
		return cpuUse{}, 0, err
	}
	server = mergePIDs(server, t.server()) // p11-kit-remote children come and go
	c1, s1, m1 := procCPU(client), procCPU(server), machineCPU()
	if r.Err != "" {
		return cpuUse{}, 0, fmt.Errorf("%s %s t=%d: %s", t.name, op, threads, r.Err)
	}
	u := cpuUse{ops: r.AllOps, client: c1.sub(c0), server: s1.sub(s0), machine: m1.sub(m0)}
	rate := 0.0
	if r.Elapsed > 0 {
		rate = float64(r.Ops) / (float64(r.Elapsed) / 1e9)
	}
	return u, rate, nil
}

func mergePIDs(a, b []int) []int {
	for _, p := range b {
		if !slices.Contains(a, p) {
			a = append(a, p)
		}
	}
	return a
}

func waitFor(d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// softhsmEnv writes a SoftHSMv2 configuration with a token directory in d.
func softhsmEnv(d string) ([]string, error) {
	tokens := filepath.Join(d, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(d, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	return []string{"SOFTHSM2_CONF=" + conf}, nil
}

func remoteTargetTitle(name string) string {
	switch name {
	case TargetLocal:
		return "libgohsm.so, local mode, in the application's process"
	case TargetRemote:
		return "libgohsm.so, remote mode, against gohsm serve on loopback (same machine)"
	case TargetP11KitSoftHSM:
		return "SoftHSMv2 served by p11-kit-server on a unix socket, through p11-kit-client.so"
	case TargetP11KitGohsm:
		return "libgohsm.so (local mode) served by p11-kit-server on a unix socket, through p11-kit-client.so"
	}
	return name
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func debVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// CHostResult is the C application's ops/s on a target at a thread count.
type CHostResult struct {
	Target    string    `json:"target"`
	Threads   int       `json:"threads"`
	OpsPerSec float64   `json:"ops_per_sec"` // median of Runs
	Runs      []float64 `json:"runs"`
}

// chostPIN is the user PIN of the first slot's token: the harness's token
// locally, the dev token (docs/appliance.md's contract) on the appliance.
var chostPIN = map[string]string{TargetLocal: "27182818", TargetRemote: "123456"}

// runCHost runs the C application on local and remote, alternating, Repeats
// times each (at most 3: a run is a whole thread sweep).
func runCHost(cfg RemoteConfig, env map[string][]string, logf func(string, ...any)) ([]CHostResult, error) {
	maxT := slices.Max(cfg.Threads)
	runs := map[string]map[int][]float64{}
	order := []string{TargetLocal, TargetRemote}
	for r := 0; r < min(cfg.Repeats, 3); r++ {
		for k := range order {
			t := order[(k+r)%len(order)]
			cmd := exec.Command(cfg.CHost, cfg.Module, chostPIN[t], "ecdsa-p256", fmt.Sprint(cfg.CHostSeconds), fmt.Sprint(maxT))
			cmd.Env = env[t]
			out, err := cmd.Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					err = fmt.Errorf("%w: %s", err, ee.Stderr)
				}
				return nil, fmt.Errorf("%s on %s: %w", cfg.CHost, t, err)
			}
			for _, l := range strings.Split(string(out), "\n") {
				var th int
				var rate float64
				if _, err := fmt.Sscanf(l, "ecdsa-p256 threads=%d ops/s=%g", &th, &rate); err == nil {
					if runs[t] == nil {
						runs[t] = map[int][]float64{}
					}
					runs[t][th] = append(runs[t][th], rate)
				}
			}
			logf("C host on %s, run %d/%d: %s", t, r+1, min(cfg.Repeats, 3), strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
		}
	}
	var res []CHostResult
	for _, t := range order {
		for _, th := range cfg.Threads {
			if xs := runs[t][th]; len(xs) > 0 {
				res = append(res, CHostResult{Target: t, Threads: th, OpsPerSec: Median(xs), Runs: xs})
			}
		}
	}
	return res, nil
}
