// Command genguard writes zguard.go in the directory given (default: the
// current one, as go generate runs it in firmware-sim/device).
package main

import (
	"log"
	"os"

	"github.com/gohsm/gohsm/firmware-sim/device/internal/genguard"
)

func main() {
	log.SetFlags(0)
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := genguard.Write(dir); err != nil {
		log.Fatal(err)
	}
}
