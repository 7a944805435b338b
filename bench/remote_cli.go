package bench

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RemoteMain is `gohsm-bench-remote ARGS`:
//
//	[run] [flags]            the network comparison (make bench-remote)
//	render -md F [-appliance-doc F] r.json   the documents from a saved report
//	agent ...                one target's process (started by run)
func RemoteMain(args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "agent":
		return agentMain(args)
	case "echo":
		return echoMain()
	case "run":
		return remoteRun(args, stdout, stderr)
	case "render":
		return remoteRender(args, stderr)
	}
	return fmt.Errorf("unknown command %q (run, render, agent)", cmd)
}

type remoteDocFlags struct {
	md, applianceDoc string
}

func (d *remoteDocFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.md, "md", "", "write the full Markdown report here (docs/bench-remote.md)")
	fs.StringVar(&d.applianceDoc, "appliance-doc", "", "replace the \"Measured\" section of this document (docs/appliance.md) with the summary")
}

func (d *remoteDocFlags) write(rep *RemoteReport, stderr io.Writer) error {
	if d.md != "" {
		f, err := os.Create(d.md)
		if err != nil {
			return err
		}
		if err := rep.WriteMarkdown(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", d.md)
	}
	if d.applianceDoc != "" {
		link := "bench-remote.md"
		if d.md != "" {
			if rel, err := filepath.Rel(filepath.Dir(d.applianceDoc), d.md); err == nil {
				link = rel
			}
		}
		if err := rep.UpdateApplianceDoc(d.applianceDoc, link); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "updated the Measured section of %s\n", d.applianceDoc)
	}
	return nil
}

func remoteRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "repository root (build/gohsm, build/libgohsm.so; the Go client benchmarks run there)")
	def := DefaultRemoteConfig(".")
	targets := fs.String("targets", strings.Join(def.Targets, ","), "targets, comma-separated")
	ops := fs.String("ops", strings.Join(def.Ops, ","), "ops, comma-separated")
	threads := fs.String("sessions", "1,8,32", "session (thread) counts, comma-separated")
	duration := fs.Duration("duration", def.Duration, "one measurement")
	warmup := fs.Duration("warmup", def.Warmup, "untimed warm-up before each measurement")
	repeats := fs.Int("repeats", def.Repeats, "interleaved repeats of each measurement")
	quiet := fs.Float64("quiet", def.Quiet, "CPUs other processes may use during a measurement before it is made again")
	retryBudget := fs.Duration("retry-budget", def.RetryBudget, "total time for measurements made again")
	findKeys := fs.Int("find-keys", def.FindKeys, "session AES keys C_FindObjects searches")
	module := fs.String("module", "", "libgohsm.so (default: <root>/build/libgohsm.so)")
	gohsm := fs.String("gohsm", "", "the gohsm command, for gohsm serve (default: <root>/build/gohsm)")
	softhsm := fs.String("softhsm", def.SoftHSM, "SoftHSMv2 module")
	p11kitServer := fs.String("p11kit-server", def.P11KitServer, "p11-kit-server")
	p11kitClient := fs.String("p11kit-client", def.P11KitClient, "p11-kit-client.so")
	goBench := fs.Bool("go-bench", true, "also run the Go client's benchmarks (go test -bench in -root)")
	goCmd := fs.String("go", "go", "the go command")
	goCount := fs.Int("go-bench-count", def.GoBenchCount, "runs of each Go client benchmark")
	goTime := fs.String("go-benchtime", def.GoBenchTime, "-benchtime of the Go client benchmarks")
	perf := fs.String("perf", "auto", "perf, for profiles of the appliance and the client (auto: if on PATH; none: no profiles)")
	profileOps := fs.String("profile-ops", strings.Join(def.ProfileOps, ","), "ops profiled on remote at the largest session count")
	chost := fs.String("chost", "auto", "the C application bench/chost/csrc/chost.c, built (auto: <root>/build/chost if there; none: skip)")
	chostSecs := fs.Int("chost-seconds", 1, "seconds per thread count of each C application run")
	dir := fs.String("dir", "", "keep stores, logs and profiles here (default: a temporary directory, removed)")
	jsonOut := fs.String("json", "", "write the JSON report here")
	commands := fs.String("commands", "", "commands that reproduce the report, separated by ';' (default: this command line)")
	var docs remoteDocFlags
	docs.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := DefaultRemoteConfig(*root)
	cfg.Targets = splitList(*targets)
	cfg.Ops = splitList(*ops)
	cfg.Threads = nil
	for _, s := range splitList(*threads) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("-sessions: bad count %q", s)
		}
		cfg.Threads = append(cfg.Threads, n)
	}
	cfg.Duration, cfg.Warmup, cfg.Repeats, cfg.FindKeys = *duration, *warmup, *repeats, *findKeys
	cfg.Quiet, cfg.RetryBudget = *quiet, *retryBudget
	if *module != "" {
		cfg.Module = *module
	}
	if *gohsm != "" {
		cfg.Gohsm = *gohsm
	}
	cfg.SoftHSM, cfg.P11KitServer, cfg.P11KitClient = *softhsm, *p11kitServer, *p11kitClient
	cfg.GoBench, cfg.GoCmd, cfg.GoBenchCount, cfg.GoBenchTime = *goBench, *goCmd, *goCount, *goTime
	cfg.ProfileOps = splitList(*profileOps)
	switch *perf {
	case "none", "":
	case "auto":
		if p, err := exec.LookPath("perf"); err == nil && exec.Command(p, "--version").Run() == nil {
			cfg.Perf = p
		}
	default:
		cfg.Perf = *perf
	}
	switch *chost {
	case "none", "":
	case "auto":
		if p := filepath.Join(*root, "build", "chost"); fileExists(p) {
			cfg.CHost = p
		}
	default:
		cfg.CHost = *chost
	}
	cfg.CHostSeconds = max(*chostSecs, 1)
	cfg.Dir = *dir
	cfg.Commands = []string{"build/gohsm-bench-remote " + strings.Join(args, " ")}
	if *commands != "" {
		cfg.Commands = strings.Split(*commands, ";")
	}
	for _, p := range []string{cfg.Gohsm, cfg.Module} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w (make build)", err)
		}
	}
	cfg.Logf = func(f string, a ...any) { fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) }
	if cfg.Perf == "" {
		cfg.Logf("no perf: the report will have no profiles")
	}
	t0 := time.Now()
	rep, err := RunRemote(cfg)
	if err != nil {
		return err
	}
	if cfg.Perf == "" {
		rep.Notes = append(rep.Notes, "perf was not available: no profiles (Debian: apt-get install linux-perf)")
	}
	fmt.Fprintf(stderr, "run took %s\n", time.Since(t0).Round(time.Second))
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	rep.writeGoals(stdout)
	fmt.Fprintln(stdout)
	rep.writeRatioTable(stdout)
	return docs.write(rep, stderr)
}

func remoteRender(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var docs remoteDocFlags
	docs.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("render: name one JSON report")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := ReadRemoteJSON(f)
	if err != nil {
		return err
	}
	return docs.write(rep, stderr)
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
