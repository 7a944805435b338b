package bench

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Main is the command line: `gohsm-bench ARGS` and `gohsm bench ARGS` both
// hand their arguments here.
//
//	run [-quick|-full] [flags]      measure (the default command)
//	compare [-a A] [-b B] r.json... print A/B ratios from saved reports
//	render [flags] r.json...        Markdown report and plots from saved reports
//	ops                             list the ops
func Main(args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stdout, stderr)
	case "compare":
		return cmdCompare(args, stdout)
	case "render":
		return cmdRender(args, stderr)
	case "ops":
		for _, o := range Ops() {
			fmt.Fprintf(stdout, "%-24s %-26s %s\n", o.Name, o.Mechanism, o.Title)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q (run, compare, render, ops)", cmd)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// renderFlags are shared by run and render.
type renderFlags struct {
	md, img, a, b, commands string
	draft                   bool
	draftNote               string
}

func (r *renderFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.md, "md", "", "write the Markdown report here (e.g. docs/benchmarks.md)")
	fs.StringVar(&r.img, "img", "", "write plots (SVG and PNG) into this directory (default: img/ beside -md)")
	fs.StringVar(&r.a, "a", "gohsm", "candidate target for ratios and goals")
	fs.StringVar(&r.b, "b", "softhsm2", "reference target for ratios and goals")
	fs.BoolVar(&r.draft, "draft", false, "mark the Markdown report as a draft")
	fs.StringVar(&r.draftNote, "draft-note", "", "why the report is a draft (with -draft)")
	fs.StringVar(&r.commands, "commands", "", "commands that reproduce the report, separated by ';' (default: this command line)")
}

func (r *renderFlags) write(rep *Report, stderr io.Writer) error {
	if r.md == "" {
		return nil
	}
	img := r.img
	if img == "" {
		img = filepath.Join(filepath.Dir(r.md), "img")
	}
	if err := os.MkdirAll(img, 0o755); err != nil {
		return err
	}
	images, err := WritePlots(rep, img, r.a, r.b)
	if err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(r.md), img)
	if err != nil {
		rel = img
	}
	cmds := []string{filepath.Base(os.Args[0]) + " " + strings.Join(os.Args[1:], " ")}
	if r.commands != "" {
		cmds = strings.Split(r.commands, ";")
	}
	opts := MarkdownOptions{A: r.a, B: r.b, Draft: r.draft, DraftNote: r.draftNote, Commands: cmds, Images: images, ImageDir: rel}
	f, err := os.Create(r.md)
	if err != nil {
		return err
	}
	if err := rep.WriteMarkdown(f, opts); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(stderr, "wrote %s and %d plots in %s\n", r.md, len(images), img)
	return f.Close()
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "quick preset: threads 1,2, short measurements (whole run under 2 minutes)")
	full := fs.Bool("full", false, "full preset: threads 1,2,4, 1 s x 3 repeats (about 12 minutes)")
	var modules, opsList listFlag
	fs.Var(&modules, "module", "module to load, name=path or a path (repeatable; default: build/libgohsm.so and SoftHSMv2 if present)")
	fs.Var(&opsList, "op", "op to run (repeatable or comma-separated; default: all; see `gohsm-bench ops`)")
	threads := fs.String("threads", "", "thread counts, comma-separated (overrides the preset)")
	duration := fs.Duration("duration", 0, "one measurement's duration (overrides the preset)")
	warmup := fs.Duration("warmup", -1, "untimed warm-up before each measurement (overrides the preset)")
	repeats := fs.Int("repeats", 0, "repeats of each measurement (overrides the preset)")
	find := fs.Int("find-objects", 0, "session objects C_FindObjects searches (default 10000)")
	noRaw := fs.Bool("no-raw", false, "leave out the raw Go library column")
	sessionKeys := fs.Bool("session-keys", false, "make the long-lived keys session objects instead of token objects")
	root := fs.String("root", ".", "repository root (for build/libgohsm.so and docs/sm-codes.json)")
	smCodes := fs.String("sm-codes", "", "SM code table (default: <root>/docs/sm-codes.json)")
	tokenDir := fs.String("token-dir", "", "put the modules' token stores here and keep them (default: a temporary directory, removed)")
	jsonOut := fs.String("json", "", "write the JSON report here (- for stdout)")
	quiet := fs.Bool("q", false, "no progress line")
	var rf renderFlags
	rf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := Quick()
	if *full {
		cfg = Full()
	}
	if !*quick && !*full {
		cfg.Mode = "custom"
	}
	for _, m := range modules {
		cfg.Modules = append(cfg.Modules, ParseModule(m))
	}
	if len(modules) == 0 {
		cfg.Modules = DefaultModules(*root)
	}
	for _, o := range opsList {
		cfg.Ops = append(cfg.Ops, strings.Split(o, ",")...)
	}
	if *threads != "" {
		cfg.Threads = nil
		for _, s := range strings.Split(*threads, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("-threads: %w", err)
			}
			cfg.Threads = append(cfg.Threads, n)
		}
	}
	if *duration > 0 {
		cfg.Duration = *duration
	}
	if *warmup >= 0 {
		cfg.Warmup = *warmup
	}
	if *repeats > 0 {
		cfg.Repeats = *repeats
	}
	if *find > 0 {
		cfg.FindObjects = *find
	}
	cfg.Raw = !*noRaw
	cfg.SessionKeys = *sessionKeys
	cfg.SMCodes = *smCodes
	if cfg.SMCodes == "" {
		cfg.SMCodes = filepath.Join(*root, "docs", "sm-codes.json")
	}
	if len(cfg.Modules) > 0 {
		// Returns only once this process has the isolated environment.
		if err := ExecIsolated(*tokenDir); err != nil {
			return err
		}
	}
	if !*quiet && isTerminal(stderr) {
		cfg.Progress = stderr
	}
	cfg.Logf = func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }

	t0 := time.Now()
	rep, err := Run(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "run took %s\n", time.Since(t0).Round(time.Second))
	if *jsonOut == "-" {
		if err := rep.WriteJSON(stdout); err != nil {
			return err
		}
	} else if *jsonOut != "" {
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
	if *jsonOut != "-" {
		if err := rep.WriteText(stdout, rf.a, rf.b); err != nil {
			return err
		}
	}
	return rf.write(rep, stderr)
}

func readReports(paths []string) (*Report, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("name at least one JSON report")
	}
	var rep *Report
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		r, err := ReadJSON(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if rep == nil {
			rep = r
		} else {
			rep.Merge(r)
		}
	}
	return rep, nil
}

func cmdCompare(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	a := fs.String("a", "gohsm", "candidate target (numerator)")
	b := fs.String("b", "softhsm2", "reference target (denominator)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep, err := readReports(fs.Args())
	if err != nil {
		return err
	}
	return rep.WriteRatios(stdout, *a, *b)
}

func cmdRender(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	var rf renderFlags
	rf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep, err := readReports(fs.Args())
	if err != nil {
		return err
	}
	if rf.md == "" {
		return fmt.Errorf("render: -md is required")
	}
	return rf.write(rep, stderr)
}

// isTerminal: the progress line redraws itself with \r, which only makes
// sense on a terminal; in a log it would be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
