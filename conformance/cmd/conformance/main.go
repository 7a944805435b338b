// Command conformance runs the PKCS#11 conformance suite against a list of
// modules, each in its own process (a module is process-wide state, and a
// crash must only cost that module's column), and writes
// build/conformance/<name>.json per module and docs/conformance.md.
//
//	go run ./conformance/cmd/conformance -out build/conformance -doc docs/conformance.md \
//	    /usr/lib/softhsm/libsofthsm2.so build/libgohsm.so
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gohsm/gohsm/conformance"
)

func main() {
	out := flag.String("out", "build/conformance", "directory for <module>.json")
	doc := flag.String("doc", "docs/conformance.md", "markdown report to write (empty: none)")
	single := flag.String("single", "", "internal: run one module and write its JSON to this file")
	filter := flag.String("filter", "", "run only checks whose id has this prefix")
	verbose := flag.Bool("v", false, "progress on stderr")
	flag.Parse()
	opts := conformance.Options{Filter: *filter}
	if *verbose {
		opts.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	}
	if *single != "" {
		if flag.NArg() != 1 {
			fail("-single takes one module")
		}
		rs, err := conformance.Run(flag.Arg(0), opts)
		if err != nil {
			fail(err.Error())
		}
		if err := conformance.WriteJSON(*single, rs); err != nil {
			fail(err.Error())
		}
		return
	}
	if flag.NArg() == 0 {
		fail("usage: conformance [-out dir] [-doc file] module.so...")
	}
	self, err := os.Executable()
	if err != nil {
		fail(err.Error())
	}
	var mods []conformance.ModuleResults
	bad := false
	for _, m := range flag.Args() {
		name := conformance.ModuleName(m)
		js := filepath.Join(*out, name+".json")
		args := []string{"-single", js, "-filter", *filter}
		if *verbose {
			args = append(args, "-v")
		}
		cmd := exec.Command(self, append(args, m)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "conformance: %s: %v (its column is left out)\n", m, err)
			bad = true
			continue
		}
		rs, err := conformance.ReadJSON(js)
		if err != nil {
			fail(err.Error())
		}
		p, f, s := conformance.Totals(rs)
		fmt.Printf("%s: %d checks, %d pass, %d fail, %d skip -> %s\n", name, len(rs), p, f, s, js)
		mods = append(mods, conformance.ModuleResults{Name: name, Results: rs})
	}
	if *doc != "" && len(mods) > 0 {
		f, err := os.Create(*doc)
		if err != nil {
			fail(err.Error())
		}
		command := "go run ./conformance/cmd/conformance -out " + *out + " -doc " + *doc + " " + strings.Join(flag.Args(), " ")
		if err := conformance.WriteMarkdown(f, mods, "make build\n"+command); err != nil {
			fail(err.Error())
		}
		if err := f.Close(); err != nil {
			fail(err.Error())
		}
	}
	if bad {
		os.Exit(1)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "conformance:", msg)
	os.Exit(2)
}
