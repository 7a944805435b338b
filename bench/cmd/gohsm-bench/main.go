// Command gohsm-bench measures PKCS#11 modules side by side (and the raw Go
// libraries), writes the JSON report, the Markdown report and its plots, and
// compares saved reports. See bench.Main for the commands.
package main

import (
	"fmt"
	"os"

	"github.com/gohsm/gohsm/bench"
)

func main() {
	if err := bench.Main(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gohsm-bench:", err)
		os.Exit(1)
	}
}
