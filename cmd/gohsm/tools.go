package main

import (
	"os"

	"github.com/gohsm/gohsm/bench"
	"github.com/gohsm/gohsm/conformance"
)

// The measuring tools are libraries that nothing else imports (DESIGN.md);
// the CLI is where users reach them, so it is the one exception.

func conformanceCmd(args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return conformance.Main([]string{self, "conformance"}, args, os.Stdout, os.Stderr)
}

func benchCmd(args []string) error { return bench.Main(args, os.Stdout, os.Stderr) }
