package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Token-store isolation.
//
// A module written in Go (ours) is a c-shared library with its own Go
// runtime, and that runtime reads the environment the process started with,
// not the C environment at dlopen time: os.Setenv in the harness is
// invisible to it (measured: GOHSM_DIR set that way was ignored and the
// module used ~/.local/share/gohsm). So the variables must be in place when
// the process starts. ExecIsolated arranges that by re-executing the running
// binary once; Run refuses to load modules without it rather than touch a
// user's real token store.

const (
	envBenchDir = "GOHSM_BENCH_DIR" // the isolated directory, set by ExecIsolated
	envBenchTmp = "GOHSM_BENCH_TMP" // "1": ExecIsolated made it, Run removes it
)

// ExecIsolated makes sure this process runs with SOFTHSM2_CONF and GOHSM_DIR
// pointing into a bench directory (dir, or a fresh temporary one). If the
// process already does, it returns nil at once; otherwise it re-executes
// the running binary with the same arguments and the variables set, and
// returns only on failure. Call it first thing, before any module is loaded.
func ExecIsolated(dir string) error {
	if d := os.Getenv(envBenchDir); d != "" && isolatedAt(initialEnv(), d) {
		return nil
	}
	tmp := "0"
	if dir == "" {
		d, err := os.MkdirTemp("", "gohsm-bench-")
		if err != nil {
			return err
		}
		dir, tmp = d, "1"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	vars, err := writeIsolation(abs)
	if err != nil {
		return err
	}
	vars[envBenchDir], vars[envBenchTmp] = abs, tmp
	env := os.Environ()[:0:0]
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); vars[k] == "" {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return fmt.Errorf("re-exec %s: %w", exe, syscall.Exec(exe, os.Args, env))
}

// writeIsolation creates the token directories and SoftHSMv2's config in dir
// and returns the variables that point the modules there.
func writeIsolation(dir string) (map[string]string, error) {
	tokens := filepath.Join(dir, "softhsm-tokens")
	gdir := filepath.Join(dir, "gohsm")
	for _, d := range []string{tokens, gdir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	return map[string]string{"SOFTHSM2_CONF": conf, "GOHSM_DIR": gdir}, nil
}

// IsolationEnv returns the variables for a child process that runs the
// harness isolated in dir (for tests and scripts that start their own).
func IsolationEnv(dir string) ([]string, error) {
	vars, err := writeIsolation(dir)
	if err != nil {
		return nil, err
	}
	vars[envBenchDir] = dir
	var out []string
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out, nil
}

// initialEnv is the environment the process started with (what a Go module
// sees), from /proc/self/environ; elsewhere the current one.
func initialEnv() map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile("/proc/self/environ")
	var kvs []string
	if err == nil {
		for _, kv := range bytes.Split(b, []byte{0}) {
			kvs = append(kvs, string(kv))
		}
	} else {
		kvs = os.Environ()
	}
	for _, kv := range kvs {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func isolatedAt(env map[string]string, dir string) bool {
	return env[envBenchDir] == dir &&
		env["GOHSM_DIR"] == filepath.Join(dir, "gohsm") &&
		env["SOFTHSM2_CONF"] == filepath.Join(dir, "softhsm2.conf")
}

// checkIsolated is Run's guard before loading modules: it returns the
// directory to remove afterwards ("" for none).
func checkIsolated() (cleanup string, err error) {
	env := initialEnv()
	d := env[envBenchDir]
	if d == "" || !isolatedAt(env, d) {
		return "", fmt.Errorf("bench: modules must run in an isolated token store set up before the process " +
			"started (a Go module reads only its initial environment): call bench.ExecIsolated first")
	}
	if env[envBenchTmp] == "1" {
		return d, nil
	}
	return "", nil
}
