package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gohsm/gohsm/bench"
	"github.com/gohsm/gohsm/hsmtest/fixture"
)

// `gohsm fixture`: a ready token in a throw-away store for a test suite,
// and the environment that points libgohsm.so at it (docs/fixture.md).

const fixtureUsage = `usage:
  gohsm fixture up [--dir D] [--faults F] [--format sh|github|json] [--label L]
                   [--keys ec,rsa,aes,ed25519|all] [--user-pin P|random] [--so-pin P|random]
                   [--module PATH] [--kdf-iterations N]
      make a token (label, user and SO PINs, the keys asked for) in a new store
      (D, or a new temporary directory) and print the environment a test needs:
      shell exports (sh, the default: eval "$(gohsm fixture up)"), lines for
      $GITHUB_ENV (github), or JSON (json). FOR TESTS ONLY: fixed PINs
      (1234 / 12345678) unless told otherwise, and a cheap PIN KDF.
  gohsm fixture env [--dir D] [--format sh|github|json]
      print the environment of an existing fixture again
  gohsm fixture down [--dir D]
      remove a fixture (D, default $GOHSM_FIXTURE_DIR); refuses a directory
      that gohsm fixture up did not make
  gohsm fixture bench [-n N] [-md FILE] [--module PATH] [--softhsm PATH]
      measure fixture up to a signed message against SoftHSMv2's
      softhsm2-util --init-token + pkcs11-tool (make bench-fixture)
`

func fixtureCmd(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, fixtureUsage)
		return errors.New("want up, env, down or bench")
	}
	switch args[0] {
	case "up":
		return fixtureUp(args[1:], os.Stdout)
	case "env":
		return fixtureEnv(args[1:], os.Stdout)
	case "down":
		return fixtureDown(args[1:])
	case "bench":
		return fixtureBench(args[1:])
	case "help", "-h", "--help":
		fmt.Print(fixtureUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, fixtureUsage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

type keysFlag []string

func (l *keysFlag) String() string     { return strings.Join(*l, ",") }
func (l *keysFlag) Set(s string) error { *l = append(*l, s); return nil }

func fixtureUp(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fixture up", flag.ContinueOnError)
	var o fixture.Options
	var keys keysFlag
	fs.StringVar(&o.Dir, "dir", "", "fixture directory (new or empty; default: a new temporary directory)")
	fs.StringVar(&o.Faults, "faults", "", "fault plan file (JSON) for the module: GOHSM_FAULTS and the faults key")
	format := fs.String("format", "sh", "output: sh, github or json")
	fs.StringVar(&o.Label, "label", fixture.DefaultLabel, "token label")
	fs.Var(&keys, "keys", "keys to generate: ec,rsa,aes,ed25519 or all (repeatable)")
	fs.StringVar(&o.UserPIN, "user-pin", fixture.DefaultUserPIN, "user PIN, or random")
	fs.StringVar(&o.SOPIN, "so-pin", fixture.DefaultSOPIN, "SO PIN, or random")
	module := fs.String("module", "", "path of libgohsm.so (default: beside this binary, then $GOHSM_MODULE)")
	fs.IntVar(&o.KDFIterations, "kdf-iterations", fixture.DefaultKDFIterations, "PBKDF2 iterations of the PINs (tests only: cheap)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	o.Keys = keys
	var err error
	if o.Module, err = findModule(*module); err != nil {
		return err
	}
	f, err := fixture.Up(o)
	if err != nil {
		return err
	}
	return printFixture(f, *format, out)
}

func fixtureEnv(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fixture env", flag.ContinueOnError)
	dir := fs.String("dir", os.Getenv(fixture.EnvFixtureDir), "fixture directory (default $GOHSM_FIXTURE_DIR)")
	format := fs.String("format", "sh", "output: sh, github or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("need --dir (or GOHSM_FIXTURE_DIR)")
	}
	f, err := fixture.Load(*dir)
	if err != nil {
		return err
	}
	return printFixture(f, *format, out)
}

func fixtureDown(args []string) error {
	fs := flag.NewFlagSet("fixture down", flag.ContinueOnError)
	dir := fs.String("dir", os.Getenv(fixture.EnvFixtureDir), "fixture directory (default $GOHSM_FIXTURE_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("need --dir (or GOHSM_FIXTURE_DIR)")
	}
	return fixture.Down(*dir)
}

func checkFormat(f string) error {
	switch f {
	case "sh", "github", "json":
		return nil
	}
	return fmt.Errorf("format %q: want sh, github or json", f)
}

func printFixture(f *fixture.Fixture, format string, out io.Writer) error {
	var (
		s   string
		err error
	)
	switch format {
	case "json":
		var b []byte
		b, err = f.JSON()
		s = string(b)
	case "github":
		s, err = f.GitHubEnv()
	default:
		s, err = f.Shell()
	}
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, s)
	return err
}

// findModule returns the absolute path of libgohsm.so: flag if given, else
// the one beside this binary (a build folder: build/gohsm and
// build/libgohsm.so), else the one `make install` puts in ../lib/gohsm or
// /usr/local/lib/gohsm, else $GOHSM_MODULE.
func findModule(flagPath string) (string, error) {
	check := func(p string) (string, error) {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return "", fmt.Errorf("module: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("module %s: not a file", abs)
		}
		return abs, nil
	}
	if flagPath != "" {
		return check(flagPath)
	}
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		d := filepath.Dir(exe)
		candidates = append(candidates, filepath.Join(d, "libgohsm.so"), filepath.Join(d, "..", "lib", "gohsm", "libgohsm.so"))
	}
	candidates = append(candidates, "/usr/local/lib/gohsm/libgohsm.so")
	if e := os.Getenv(fixture.EnvModule); e != "" {
		candidates = append(candidates, e)
	}
	for _, c := range candidates {
		if p, err := check(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no libgohsm.so beside this binary, in /usr/local/lib/gohsm or at $GOHSM_MODULE: build it (make build) or pass --module PATH")
}

func fixtureBench(args []string) error {
	fs := flag.NewFlagSet("fixture bench", flag.ContinueOnError)
	var o bench.FixtureOptions
	fs.IntVar(&o.Repeats, "n", 9, "repeats of each variant (alternated)")
	md := fs.String("md", "", "write the table into this Markdown file between its bench-fixture markers")
	module := fs.String("module", "", "path of libgohsm.so (default: beside this binary)")
	fs.StringVar(&o.SoftHSM, "softhsm", "/usr/lib/softhsm/libsofthsm2.so", "path of libsofthsm2.so")
	fs.StringVar(&o.Commands, "commands", "make bench-fixture", "how to reproduce, for the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.Module, err = findModule(*module); err != nil {
		return err
	}
	if o.Gohsm, err = os.Executable(); err != nil {
		return err
	}
	rep, err := bench.RunFixture(o, os.Stderr)
	if err != nil {
		return err
	}
	table := rep.Markdown()
	fmt.Print(table)
	if *md != "" {
		return bench.ReplaceMarked(*md, "bench-fixture", table)
	}
	return nil
}
