// Command gohsm-bench-gateway measures Transit servers with one load
// generator (bench/gateway): gohsm's gateway (started here with
// `gohsm serve --dev --http`), OpenBao (`bao server -dev`, started here),
// or any running server given with -target.
//
//	gohsm-bench-gateway -gohsm build/gohsm [-openbao /path/to/bao] -md docs/bench-gateway.md
//	gohsm-bench-gateway -target name=vault,url=http://127.0.0.1:8200,token=root,pid=1234
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gohsm/gohsm/bench/gateway"
)

type targetFlags []*gateway.Target

func (t *targetFlags) String() string { return fmt.Sprint(len(*t)) }

// Set parses name=N,url=U,token=T[,pid=P][,mount=M].
func (t *targetFlags) Set(v string) error {
	tg := &gateway.Target{Mount: "transit"}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%q: want key=value", kv)
		}
		switch k {
		case "name":
			tg.Name = val
		case "url":
			tg.URL = val
		case "token":
			tg.Token = val
		case "mount":
			tg.Mount = val
		case "pid":
			p, err := strconv.Atoi(val)
			if err != nil {
				return fmt.Errorf("pid: %w", err)
			}
			tg.PID = p
		default:
			return fmt.Errorf("unknown key %q", k)
		}
	}
	if tg.Name == "" || tg.URL == "" {
		return errors.New("a target needs name= and url=")
	}
	tg.Title = tg.URL
	*t = append(*t, tg)
	return nil
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == gateway.FloorArg {
		// The HTTP floor's server process (gateway.StartFloor).
		fatal(gateway.FloorMain(os.Args[2]))
	}
	var targets targetFlags
	gohsm := flag.String("gohsm", "", "the gohsm binary: start `gohsm serve --dev --dir D --http ADDR` and measure it")
	bao := flag.String("openbao", "", "the bao binary: start `bao server -dev` and measure it")
	flag.Var(&targets, "target", "a running server: name=N,url=http://H:P,token=T[,pid=P][,mount=M] (repeatable)")
	syncs := flag.String("gohsm-sync", "always,none", "with -gohsm: the audit fsync policies to run it with, one server each (always = gohsm, the default; none = gohsm-sync-none)")
	remoteSyncs := flag.String("gohsm-remote", "", "with -gohsm: also run the gateway in front of an appliance (two processes: gohsm serve --dev --listen, and the gateway alone over its token through the appliance's client), one per audit fsync policy listed (always = gohsm-remote, none = gohsm-remote-sync-none); empty: none")
	floor := flag.Bool("http-floor", true, "with -gohsm or -openbao: also measure "+gateway.FloorName+", fasthttp answering a fixed Transit-shaped body, to show what HTTP alone costs here")
	baoAudit := flag.Bool("openbao-audit", true, "with -openbao: also run OpenBao with a file audit device (openbao-audit), beside OpenBao without one (openbao, the issue's reference)")
	conns := flag.Int("conns", 32, "connections")
	duration := flag.Duration("duration", 5*time.Second, "timed window per cell")
	warmup := flag.Duration("warmup", time.Second, "warm-up per cell")
	repeats := flag.Int("repeats", 1, "rounds (median round per cell)")
	ops := flag.String("ops", "", "operations, comma-separated (encrypt,sign); empty: all")
	batches := flag.String("batches", "1,100", "batch sizes")
	md := flag.String("md", "", "write the Markdown report here")
	js := flag.String("json", "", "write the results as JSON here")
	commands := flag.String("commands", "", "how to reproduce, for the report")
	perfDir := flag.String("perf", "", "profile the servers with linux-perf, one extra window per cell, data kept in this directory")
	profile := flag.String("profile", "gohsm", "with -perf: the targets to profile, comma-separated (empty: all)")
	render := flag.String("render", "", "measure nothing: write the Markdown report (-md, else standard output) of a run's JSON (-json's file), as this build's report would put it")
	var notes []string
	flag.Func("note", "a note line for the report (repeatable)", func(s string) error { notes = append(notes, s); return nil })
	flag.Parse()

	if *render != "" {
		b, err := os.ReadFile(*render)
		if err != nil {
			fatal(err)
		}
		var rep gateway.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			fatal(fmt.Errorf("%s: %w", *render, err))
		}
		writeMarkdown(&rep, *md)
		return
	}

	cfg := gateway.Config{Conns: *conns, Duration: *duration, Warmup: *warmup, Repeats: *repeats, PerfDir: *perfDir}
	if *profile != "" {
		cfg.Profile = strings.Split(*profile, ",")
	}
	if *ops != "" {
		cfg.Ops = strings.Split(*ops, ",")
	}
	for _, b := range strings.Split(*batches, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(b))
		if err != nil || n < 1 || n > 10000 {
			fatal(fmt.Errorf("-batches: %q", b))
		}
		cfg.Batches = append(cfg.Batches, n)
	}

	var servers []*gateway.Server
	stopAll := func() {
		for _, s := range servers {
			s.Stop()
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; stopAll(); os.Exit(130) }()

	// startEach starts one gohsm server per audit fsync policy listed.
	startEach := func(list string, startOne func(bin, sync string) (*gateway.Server, error)) {
		if *gohsm == "" || list == "" {
			return
		}
		for _, sync := range strings.Split(list, ",") {
			s, err := startOne(*gohsm, strings.TrimSpace(sync))
			if err != nil {
				stopAll()
				fatal(err)
			}
			servers = append(servers, s)
			targets = append(targets, s.Target)
		}
	}
	startEach(*syncs, gateway.StartGohsm)
	startEach(*remoteSyncs, gateway.StartGohsmRemote)
	if *bao != "" {
		audits := []bool{false}
		if *baoAudit {
			audits = append(audits, true)
		}
		for _, audit := range audits {
			s, err := gateway.StartOpenBao(*bao, audit)
			if err != nil {
				stopAll()
				fatal(err)
			}
			servers = append(servers, s)
			targets = append(targets, s.Target)
		}
	}
	if len(targets) == 0 {
		fatal(errors.New("nothing to measure: give -gohsm, -openbao or -target"))
	}
	if *floor && (*gohsm != "" || *bao != "") {
		self, err := os.Executable()
		if err == nil {
			var s *gateway.Server
			if s, err = gateway.StartFloor(self); err == nil {
				servers = append(servers, s)
				targets = append(targets, s.Target)
			}
		}
		if err != nil {
			stopAll()
			fatal(err)
		}
	}
	rep, err := gateway.Run(targets, cfg, os.Stderr)
	stopAll()
	if err != nil {
		fatal(err)
	}
	rep.Commands = *commands
	rep.Notes = notes
	writeMarkdown(rep, *md)
	if *js != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*js, b, 0o644); err != nil {
			fatal(err)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "gohsm-bench-gateway:", err)
	os.Exit(1)
}

// writeMarkdown writes rep's report to path (standard output if empty).
func writeMarkdown(rep *gateway.Report, path string) {
	if path == "" {
		rep.Markdown(os.Stdout)
		return
	}
	f, err := os.Create(path)
	if err != nil {
		fatal(err)
	}
	rep.Markdown(f)
	if err := f.Close(); err != nil {
		fatal(err)
	}
}
