// Command gohsm-bench-remote compares, through the C ABI, libgohsm.so in
// local mode, in remote mode against gohsm serve on loopback, and the
// open-source network setup (SoftHSMv2 and gohsm behind p11-kit's server),
// with the Go client's own benchmarks; make bench-remote runs it and writes
// docs/bench-remote.md and the "Measured" section of docs/appliance.md. See
// bench.RemoteMain.
package main

import (
	"fmt"
	"os"

	"github.com/gohsm/gohsm/bench"
)

func main() {
	if err := bench.RemoteMain(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gohsm-bench-remote:", err)
		os.Exit(1)
	}
}
