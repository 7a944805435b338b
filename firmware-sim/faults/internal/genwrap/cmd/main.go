// Command genwrap writes zwrap.go in the directory given (default: the
// current one, as go generate runs it in firmware-sim/faults).
package main

import (
	"log"
	"os"

	"github.com/gohsm/gohsm/firmware-sim/faults/internal/genwrap"
)

func main() {
	log.SetFlags(0)
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := genwrap.Write(dir); err != nil {
		log.Fatal(err)
	}
}
