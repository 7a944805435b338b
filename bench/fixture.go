package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The fixture measurement (make bench-fixture, `gohsm fixture bench`): how
// long a CI job waits from nothing to a signed message, with gohsm's
// fixture and with SoftHSMv2's usual recipe, as the commands a CI script
// runs (separate processes, each on a fresh store), alternated in one run.

// FixtureOptions configure RunFixture.
type FixtureOptions struct {
	Gohsm    string // the gohsm binary
	Module   string // libgohsm.so
	SoftHSM  string // libsofthsm2.so; "" or missing skips SoftHSMv2
	Repeats  int    // timed runs of each route (after one warm-up run each)
	Commands string // how to reproduce, for the report
}

// FixtureRoute is one way from nothing to a signed message.
type FixtureRoute struct {
	Name, Title string
	Steps       []string    // step names, in order
	Runs        [][]float64 // per run, each step's wall seconds
	run         func(dir string) ([]float64, error)
	commands    func() []string // the commands, for the report
}

// FixtureReport is the result of RunFixture.
type FixtureReport struct {
	Date, CPU, GoVersion, SoftHSMVersion string
	LoadStart, LoadEnd                   string
	Cores, Repeats                       int
	Commands                             string
	Routes                               []*FixtureRoute
}

const (
	fxLabel   = "bench"
	fxUserPIN = "1234"
	fxSOPIN   = "12345678"
)

// RunFixture measures the routes, alternating their order run by run.
func RunFixture(o FixtureOptions, log io.Writer) (*FixtureReport, error) {
	if o.Repeats < 1 {
		o.Repeats = 1
	}
	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		return nil, errors.New("pkcs11-tool not found (Debian: opensc)")
	}
	scratch, err := os.MkdirTemp("", "gohsm-bench-fixture-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	// The file signed is a SHA-256 digest, signed with CKM_ECDSA: SoftHSMv2
	// 2.6 has no CKM_ECDSA_SHA256.
	msg := filepath.Join(scratch, "digest")
	digest := sha256.Sum256([]byte("a message to sign\n"))
	if err := os.WriteFile(msg, digest[:], 0o644); err != nil {
		return nil, err
	}
	rep := &FixtureReport{
		Date: time.Now().UTC().Format("2006-01-02"), CPU: cpuModel(), Cores: runtime.NumCPU(),
		GoVersion: runtime.Version(), Repeats: o.Repeats, Commands: o.Commands, LoadStart: loadAvg(),
	}
	sign := func(module, dir string, env []string) (float64, error) {
		sig := filepath.Join(dir, "sig")
		t, err := timed(env, tool, "--module", module, "--token-label", fxLabel, "--login", "--pin", fxUserPIN,
			"--sign", "-m", "ECDSA", "--label", "ec-p256", "-i", msg, "-o", sig)
		if err != nil {
			return 0, err
		}
		if fi, err := os.Stat(sig); err != nil || fi.Size() != 64 {
			return 0, fmt.Errorf("no 64-byte ECDSA P-256 signature in %s", sig)
		}
		return t, nil
	}
	keygen := func(module string, env []string) (float64, error) {
		return timed(env, tool, "--module", module, "--token-label", fxLabel, "--login", "--pin", fxUserPIN,
			"--keypairgen", "--key-type", "EC:prime256v1", "--label", "ec-p256", "--id", "01")
	}
	fixtureUp := func(dir string, keys bool) (float64, []string, *fixtureOut, error) {
		args := []string{"fixture", "up", "--dir", dir, "--label", fxLabel, "--module", o.Module, "--format", "json"}
		if keys {
			args = append(args, "--keys", "ec")
		}
		start := time.Now()
		out, err := exec.Command(o.Gohsm, args...).Output()
		t := time.Since(start).Seconds()
		if err != nil {
			return 0, nil, nil, fmt.Errorf("gohsm %s: %w", strings.Join(args, " "), exitErr(err))
		}
		var fx fixtureOut
		if err := json.Unmarshal(out, &fx); err != nil {
			return 0, nil, nil, fmt.Errorf("fixture up output: %w", err)
		}
		env := os.Environ()
		for k, v := range fx.Env {
			env = append(env, k+"="+v)
		}
		return t, env, &fx, nil
	}

	upCmd := func(keys string) string {
		return "gohsm fixture up --dir D --label " + fxLabel + keys + " --format json"
	}
	signCmd := "pkcs11-tool --module M --token-label " + fxLabel + " --login --pin " + fxUserPIN +
		" --sign -m ECDSA --label ec-p256 -i digest -o sig"
	keygenCmd := "pkcs11-tool --module M --token-label " + fxLabel + " --login --pin " + fxUserPIN +
		" --keypairgen --key-type EC:prime256v1 --label ec-p256 --id 01"

	routes := []*FixtureRoute{{
		Name: "gohsm-fixture", Title: "gohsm fixture with a key",
		Steps: []string{"fixture up --keys ec", "pkcs11-tool --sign"},
		run: func(dir string) ([]float64, error) {
			t1, env, fx, err := fixtureUp(dir, true)
			if err != nil {
				return nil, err
			}
			t2, err := sign(o.Module, dir, env)
			if err != nil {
				return nil, err
			}
			return []float64{t1, t2}, verifyFixtureSig(fx, msg, filepath.Join(dir, "sig"))
		},
		commands: func() []string { return []string{upCmd(" --keys ec"), signCmd} },
	}, {
		Name: "gohsm-steps", Title: "gohsm fixture, key made by pkcs11-tool",
		Steps: []string{"fixture up", "pkcs11-tool --keypairgen", "pkcs11-tool --sign"},
		run: func(dir string) ([]float64, error) {
			t1, env, _, err := fixtureUp(dir, false)
			if err != nil {
				return nil, err
			}
			t2, err := keygen(o.Module, env)
			if err != nil {
				return nil, err
			}
			t3, err := sign(o.Module, dir, env)
			return []float64{t1, t2, t3}, err
		},
		commands: func() []string { return []string{upCmd(""), keygenCmd, signCmd} },
	}}
	if o.SoftHSM != "" {
		if _, err := os.Stat(o.SoftHSM); err == nil {
			util, err := exec.LookPath("softhsm2-util")
			if err != nil {
				return nil, errors.New("softhsm2-util not found (Debian: softhsm2)")
			}
			if v, err := exec.Command(util, "--version").Output(); err == nil {
				rep.SoftHSMVersion = strings.TrimSpace(string(v))
			}
			routes = append(routes, &FixtureRoute{
				Name: "softhsm2", Title: "SoftHSMv2 " + rep.SoftHSMVersion,
				Steps: []string{"conf + softhsm2-util --init-token", "pkcs11-tool --keypairgen", "pkcs11-tool --sign"},
				run: func(dir string) ([]float64, error) {
					start := time.Now()
					conf := filepath.Join(dir, "softhsm2.conf")
					if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
						return nil, err
					}
					if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+
						"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
						return nil, err
					}
					env := append(os.Environ(), "SOFTHSM2_CONF="+conf)
					if _, err := timed(env, util, "--init-token", "--free", "--label", fxLabel,
						"--so-pin", fxSOPIN, "--pin", fxUserPIN); err != nil {
						return nil, err
					}
					t1 := time.Since(start).Seconds()
					t2, err := keygen(o.SoftHSM, env)
					if err != nil {
						return nil, err
					}
					t3, err := sign(o.SoftHSM, dir, env)
					return []float64{t1, t2, t3}, err
				},
				commands: func() []string {
					return []string{
						"printf 'directories.tokendir = D/tokens\\nobjectstore.backend = file\\n' > D/softhsm2.conf; export SOFTHSM2_CONF=D/softhsm2.conf",
						"softhsm2-util --init-token --free --label " + fxLabel + " --so-pin " + fxSOPIN + " --pin " + fxUserPIN,
						strings.Replace(keygenCmd, "--module M", "--module libsofthsm2.so", 1),
						strings.Replace(signCmd, "--module M", "--module libsofthsm2.so", 1),
					}
				},
			})
		} else {
			fmt.Fprintf(log, "fixture bench: no SoftHSMv2 at %s, measuring gohsm only\n", o.SoftHSM)
		}
	}
	rep.Routes = routes

	n := 0
	for rep0 := -1; rep0 < o.Repeats; rep0++ { // -1: the warm-up run
		for i := range routes {
			r := routes[(i+max(rep0, 0))%len(routes)]
			n++
			dir := filepath.Join(scratch, fmt.Sprintf("%s-%d", r.Name, n))
			ts, err := r.run(dir)
			os.RemoveAll(dir)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Name, err)
			}
			if rep0 >= 0 {
				r.Runs = append(r.Runs, ts)
			}
		}
		if rep0 >= 0 {
			fmt.Fprintf(log, "fixture bench: run %d/%d done\n", rep0+1, o.Repeats)
		}
	}
	rep.LoadEnd = loadAvg()
	return rep, nil
}

type fixtureOut struct {
	Env  map[string]string `json:"env"`
	Keys []struct {
		Label         string `json:"label"`
		PublicKeyFile string `json:"public_key_file"`
	} `json:"keys"`
}

// verifyFixtureSig checks the raw r||s signature with the public key the
// fixture wrote (outside the timing).
func verifyFixtureSig(fx *fixtureOut, digest, sigFile string) error {
	if len(fx.Keys) == 0 || fx.Keys[0].PublicKeyFile == "" {
		return errors.New("fixture printed no public key")
	}
	b, err := os.ReadFile(fx.Keys[0].PublicKeyFile)
	if err != nil {
		return err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return errors.New("public key file: no PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return err
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return errors.New("public key is not ECDSA")
	}
	d, _ := os.ReadFile(digest)
	sig, _ := os.ReadFile(sigFile)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(ec, d, r, s) {
		return errors.New("the signature does not verify with the fixture's public key")
	}
	return nil
}

// timed runs a command and returns its wall time in seconds.
func timed(env []string, name string, args ...string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t := time.Since(start).Seconds()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String())
	}
	return t, nil
}

func exitErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// Totals are the runs' total wall seconds.
func (r *FixtureRoute) Totals() []float64 {
	out := make([]float64, len(r.Runs))
	for i, ts := range r.Runs {
		for _, t := range ts {
			out[i] += t
		}
	}
	return out
}

// StepMedian is the median of step i.
func (r *FixtureRoute) StepMedian(i int) float64 {
	xs := make([]float64, len(r.Runs))
	for j, ts := range r.Runs {
		xs[j] = ts[i]
	}
	return Median(xs)
}

func fmtSec(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

// Markdown is the report: a table and the commands.
func (rep *FixtureReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s (%d cores), %s; each route %d times after a warm-up run, "+
		"the routes alternated run by run, each run on a fresh store; wall time of the commands as a CI script runs them "+
		"(load average %s at the start, %s at the end). Reproduce: `%s`.\n\n",
		rep.Date, rep.CPU, rep.Cores, rep.GoVersion, rep.Repeats, rep.LoadStart, rep.LoadEnd, rep.Commands)
	b.WriteString("| route | nothing → signed message, median | min – max | each step, median |\n|---|---:|---:|---|\n")
	for _, r := range rep.Routes {
		tot := r.Totals()
		steps := make([]string, len(r.Steps))
		for i, s := range r.Steps {
			steps[i] = fmt.Sprintf("%s %s", s, fmtSec(r.StepMedian(i)))
		}
		fmt.Fprintf(&b, "| %s | **%s** | %s – %s | %s |\n", r.Title, fmtSec(Median(tot)),
			fmtSec(slices.Min(tot)), fmtSec(slices.Max(tot)), strings.Join(steps, "; "))
	}
	if len(rep.Routes) > 0 {
		worst := slices.Max(rep.Routes[0].Totals())
		verdict := "met"
		if worst >= 1 {
			verdict = "NOT met"
		}
		fmt.Fprintf(&b, "\nTarget: a fresh `gohsm fixture up` to a signed message in under 1 s wall: %s (slowest of the %d runs: %s).\n",
			verdict, len(rep.Routes[0].Runs), fmtSec(worst))
	}
	if len(rep.Routes) == 3 {
		a, s := Median(rep.Routes[0].Totals()), Median(rep.Routes[2].Totals())
		fmt.Fprintf(&b, "gohsm's fixture reaches a signed message in %.2fx SoftHSMv2's time (median against median).\n", a/s)
	}
	b.WriteString("\nThe commands of each route (D a new directory, digest a file of 32 bytes, M the module):\n\n```sh\n")
	for _, r := range rep.Routes {
		fmt.Fprintf(&b, "# %s\n", r.Title)
		for _, c := range r.commands() {
			b.WriteString(c + "\n")
		}
	}
	b.WriteString("```\n")
	return b.String()
}

// ReplaceMarked puts content between the lines `<!-- name:begin -->` and
// `<!-- name:end -->` of the file at path, or appends both markers and the
// content when the file has none.
func ReplaceMarked(path, name, content string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	begin, end := "<!-- "+name+":begin -->\n", "<!-- "+name+":end -->"
	s := string(b)
	i := strings.Index(s, begin)
	j := strings.Index(s, end)
	if i < 0 || j < i {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += "\n" + begin + content + end + "\n"
	} else {
		s = s[:i+len(begin)] + content + s[j:]
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
