package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/device"
	"github.com/gohsm/gohsm/firmware-sim/device/selftest"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// gohsm selftest [--list] [--dir D] [--profile P]: the power-on self-tests
// (firmware-sim/device/selftest) with their timings, then the module's boot
// to operational on a store (C_Initialize's path: self-tests, engine start).
// GOHSM_FAIL_SELFTEST=NAME makes NAME fail; the exit status is 1 when any
// test fails.
func selftestCmd(args []string) error {
	fs := flag.NewFlagSet("selftest", flag.ContinueOnError)
	list := fs.Bool("list", false, "print the self-tests' names, one per line")
	dir := fs.String("dir", "", "also time the module's boot to operational on this store (default: a new empty one)")
	profile := fs.String("profile", "", "SM vendor profile (gohsm, tass, sansec, luna)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list {
		for _, n := range selftest.Names() {
			fmt.Println(n)
		}
		return nil
	}
	p := ck.DefaultProfile
	if *profile != "" {
		var ok bool
		if p, ok = ck.ProfileByName(*profile); !ok {
			return fmt.Errorf("unknown profile %q", *profile)
		}
	}
	fail := os.Getenv("GOHSM_FAIL_SELFTEST")
	// The module's boot, as C_Initialize runs it in a fresh process: open
	// the store, the self-tests (this process's power-on), the engine.
	store := *dir
	if store == "" {
		tmp, err := os.MkdirTemp("", "gohsm-selftest-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		store = tmp
	}
	ms, reason, err := moduleBoot(store, p, fail)
	if err != nil {
		return err
	}
	rep := device.ModuleBoot(device.BootOptions{Profile: p, FailSelftest: fail})
	for _, r := range rep.Results {
		status := "pass"
		detail := r.Note
		if r.Err != nil {
			status, detail = "FAIL", r.Err.Error()
		}
		fmt.Printf("%-4s %-19s %9.3f ms  %s\n", status, r.Name, float64(r.Took.Nanoseconds())/1e6, orDefault(detail, r.Source))
	}
	fmt.Printf("%d self-tests in %.1f ms\n", len(rep.Results), float64(rep.Took.Microseconds())/1000)
	if reason != "" {
		fmt.Printf("module boot: ERROR STATE (%s) in %.1f ms\n", reason, ms)
	} else {
		fmt.Printf("module boot to operational (C_Initialize: store, self-tests, engine; %s): %.1f ms\n", store, ms)
	}
	if !rep.OK() {
		return errors.New(rep.Reason())
	}
	return nil
}

// moduleBoot times what the module's C_Initialize does: open the store,
// run the self-tests (a fresh process's power-on: nothing cached), start
// the engine.
func moduleBoot(dir string, p *ck.Profile, fail string) (float64, string, error) {
	start := time.Now()
	td, err := tokens.Open(dir)
	if err != nil {
		return 0, "", err
	}
	defer td.Close()
	cfg := hsm.DefaultConfig(td)
	cfg.Profile = p
	m, err := hsm.New(cfg)
	if err != nil {
		return 0, "", err
	}
	g := device.NewModuleGuard(m, device.BootOptions{Profile: p, FailSelftest: fail, Dir: dir})
	if err := g.Initialize(); err != nil {
		return 0, "", err
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	defer g.Finalize()
	return ms, g.Reason(), nil
}
