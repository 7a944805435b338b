// Command conformance runs the PKCS#11 conformance suite against a list of
// modules and writes build/conformance/<name>.json per module and
// docs/conformance.md (see conformance.Main; `gohsm conformance` is the same).
//
//	go run ./conformance/cmd/conformance -out build/conformance -doc docs/conformance.md \
//	    /usr/lib/softhsm/libsofthsm2.so build/libgohsm.so
package main

import (
	"fmt"
	"os"

	"github.com/gohsm/gohsm/conformance"
)

func main() {
	self, err := os.Executable()
	if err == nil {
		err = conformance.Main([]string{self}, os.Args[1:], os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}
