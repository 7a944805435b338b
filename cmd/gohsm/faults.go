package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gohsm/gohsm/firmware-sim/faults"
)

const faultsUsage = `usage: gohsm faults check PLAN...
       gohsm faults set (--dir D | --config SERVE.CONF | --file P) [--pid PID] PLAN
       gohsm faults clear (--dir D | --config SERVE.CONF | --file P) [--pid PID]
       gohsm faults profiles | functions

Fault plans (docs/firmware.md, "Faults and latency"): JSON files that make the
module (GOHSM_FAULTS=PLAN, or faults = PLAN in its configuration) or the
appliance (faults = PLAN in gohsm serve's configuration; D/faults.json in dev
mode) fail, delay, unplug or lag on purpose.

check      parse each plan and print it in full (profiles expanded), or say
           what is wrong and exit 1
set        check PLAN and put it, atomically, where an appliance reads its
           plan: --dir D is D/faults.json (gohsm serve --dev --dir D), --config
           the faults key of a gohsm serve configuration, --file any path. The
           appliance reads the file every second and on SIGHUP (--pid PID sends
           one, for the new plan to apply at once); counts start afresh
clear      remove that file: no faults from then on
profiles   the latency profiles, their devices and sources
functions  the function names a plan may use`

// faultsCmd is `gohsm faults`.
func faultsCmd(args []string) error { return faultsMain(args, os.Stdout, os.Stderr) }

func faultsMain(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, faultsUsage)
		return errors.New("no faults command")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, faultsUsage)
		return nil
	case "check":
		if len(args) < 2 {
			return errors.New("check: which plan file?")
		}
		for _, path := range args[1:] {
			p, err := faults.LoadFile(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: ok\n%s\n", path, p)
		}
		return nil
	case "set", "clear":
		return faultsSet(args[0], args[1:], stdout, stderr)
	case "profiles":
		for _, p := range faults.Profiles() {
			fmt.Fprintf(stdout, "%s (also %s): %s\n", p.Name, strings.Join(p.Aliases, ", "), p.Device)
			for _, s := range p.Sources {
				fmt.Fprintf(stdout, "  source: %s\n", s)
			}
		}
		return nil
	case "functions":
		fmt.Fprintln(stdout, strings.Join(faults.Functions(), "\n"))
		return nil
	}
	fmt.Fprintln(stderr, faultsUsage)
	return fmt.Errorf("unknown faults command %q", args[0])
}

func faultsSet(cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("faults "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, faultsUsage) }
	dir := fs.String("dir", "", "the dev-mode directory D: the plan is D/faults.json")
	config := fs.String("config", "", "a gohsm serve configuration: the plan is its faults file")
	file := fs.String("file", "", "the plan file the appliance reads")
	pid := fs.Int("pid", 0, "send SIGHUP to this process (the appliance) so that the plan applies at once")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var target string
	n := 0
	for _, v := range []string{*dir, *config, *file} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%s: give one of --dir, --config and --file", cmd)
	}
	switch {
	case *dir != "":
		target = filepath.Join(*dir, devFaultsFile)
	case *file != "":
		target = *file
	default:
		cfg, err := loadServeConfig(*config)
		if err != nil {
			return err
		}
		if cfg.Faults == "" {
			return fmt.Errorf("%s has no faults = FILE: add one (and restart the appliance) first", *config)
		}
		target = cfg.Faults
	}
	switch {
	case cmd == "set" && len(pos) != 1:
		return errors.New("set: one plan file")
	case cmd == "clear" && len(pos) != 0:
		return fmt.Errorf("clear: unexpected argument %q", pos[0])
	}
	if cmd == "set" {
		data, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		p, err := faults.WriteFile(target, data)
		if err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		fmt.Fprintf(stdout, "fault plan %s: %d rule(s), %d event(s), written to %s\n", pos[0], len(p.Rules), len(p.Events), target)
	} else {
		if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		fmt.Fprintf(stdout, "fault plan %s removed\n", target)
	}
	if *pid != 0 {
		if err := syscall.Kill(*pid, syscall.SIGHUP); err != nil {
			return fmt.Errorf("SIGHUP to %d: %w", *pid, err)
		}
		fmt.Fprintf(stdout, "sent SIGHUP to %d: the appliance applies it now\n", *pid)
	} else {
		fmt.Fprintln(stdout, "the appliance applies it within a second (or at once on SIGHUP)")
	}
	return nil
}
