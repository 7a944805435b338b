package conformance

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Main is the command line of the suite, shared by
// conformance/cmd/conformance and `gohsm conformance`. It runs each module in
// a child process (a module is process-wide state, and a crash must only cost
// that module's column): self is the argv prefix that re-runs this command,
// e.g. {"/usr/bin/gohsm", "conformance"}.
func Main(self []string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "build/conformance", "directory for <module>.json")
	doc := fs.String("doc", "docs/conformance.md", "markdown report to write (empty: none)")
	single := fs.String("single", "", "internal: run one module and write its JSON to this file")
	filter := fs.String("filter", "", "run only checks whose id has this prefix")
	verbose := fs.Bool("v", false, "progress on stderr")
	wycheproof := fs.String("wycheproof", "", "Wycheproof directory (module root or testvectors_v1): runs the vectors group")
	acvp := fs.String("acvp", "", "NIST ACVP test data directory (holding vectors/ and expected/): runs the vectors.acvp checks")
	appliance := fs.String("appliance", "", "a gohsm binary: judge libgohsm.so in remote mode, through a `gohsm serve` on loopback (results as <module>-remote)")
	keep := fs.String("dir", "", "with -single: make the isolated store (and the appliance's logs) here and keep it")
	members := fs.Int("members", 1, "with -appliance: serve the store by a cluster of this many members (docs/cluster.md)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := Options{Filter: *filter, WycheproofDir: *wycheproof, ACVPDir: *acvp, Appliance: *appliance, Members: *members, TokenDir: *keep}
	if *verbose {
		opts.Logf = func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }
	}
	if *single != "" {
		if fs.NArg() != 1 {
			return errors.New("-single takes one module")
		}
		rs, err := Run(fs.Arg(0), opts)
		if err != nil {
			return err
		}
		return WriteJSON(*single, rs)
	}
	if fs.NArg() == 0 {
		return errors.New("usage: conformance [-out dir] [-doc file] [-filter prefix] [-wycheproof dir] [-acvp dir] [-appliance gohsm] [-v] module.so...")
	}
	var mods []ModuleResults
	var failed []string
	for _, m := range fs.Args() {
		name := ModuleName(m)
		if *appliance != "" {
			name += "-remote"
		}
		js := filepath.Join(*out, name+".json")
		child := append(append([]string{}, self[1:]...), "-single", js, "-filter", *filter)
		if *verbose {
			child = append(child, "-v")
		}
		if *wycheproof != "" {
			child = append(child, "-wycheproof", *wycheproof)
		}
		if *acvp != "" {
			child = append(child, "-acvp", *acvp)
		}
		if *appliance != "" {
			child = append(child, "-appliance", *appliance)
		}
		cmd := exec.Command(self[0], append(child, m)...)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(stderr, "conformance: %s: %v (its column is left out)\n", m, err)
			failed = append(failed, m)
			continue
		}
		rs, err := ReadJSON(js)
		if err != nil {
			return err
		}
		p, f, s := Totals(rs)
		fmt.Fprintf(stdout, "%s: %d checks, %d pass, %d fail, %d skip -> %s\n", name, len(rs), p, f, s, js)
		mods = append(mods, ModuleResults{Name: name, Results: rs})
	}
	if *doc != "" && len(mods) > 0 {
		f, err := os.Create(*doc)
		if err != nil {
			return err
		}
		command := "go run ./conformance/cmd/conformance -out " + *out + " -doc " + *doc + " "
		if *appliance != "" {
			command += "-appliance " + *appliance + " "
		}
		command += strings.Join(fs.Args(), " ")
		if err := WriteMarkdown(f, mods, "make build\n"+command); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not run %s", strings.Join(failed, ", "))
	}
	return nil
}
