package gateway

import (
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis, utime 250, stime 50.
	line := "4242 (bao (dev) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 12 0 100 0 0"
	d, err := parseStat("stat", line)
	if err != nil || d != 3*time.Second {
		t.Fatalf("%v %v", d, err)
	}
	if _, err := parseStat("stat", "4242 (x S 1"); err == nil {
		t.Fatal("malformed line accepted")
	}
	if _, err := procCPU(0); err != nil {
		t.Fatal(err)
	}
}
