package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// SignCost is the CPU one ECDSA P-256 signature takes on one core of this
// machine, now: crypto/ecdsa.Sign with crypto/rand, the call gohsm's
// engine makes (hsm/mech/ec.go) and OpenBao's Transit makes, so neither
// server can sign for less. It is timed by the signing thread's own CPU
// clock (CLOCK_THREAD_CPUTIME_ID), so a busy neighbour on the other core
// does not inflate it; the smallest of a few rounds is kept (noise only
// ever adds).
//
// It bounds what the sign targets can reach here: with every core signing
// and nothing else, the machine signs at most Cores/SignCost per second.
func SignCost(window time.Duration) (time.Duration, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, err
	}
	digest := sha256.Sum256([]byte("gohsm-bench-gateway sign cost"))
	return bestOf(window, func() error {
		_, _, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		return err
	}, nil)
}

// AuditRecordBytes is about what gohsm writes to its audit log for one
// batch-1 request (its request and response records, 1,451 bytes for an
// encrypt of 64 B, a little more for a sign).
const AuditRecordBytes = 1500

// WriteCost is the CPU one write(2) of n bytes appended to a file in dir
// takes, now: what writing a request's audit records costs the server
// (gohsm writes them in one write per request or fewer; Vault's file
// audit device writes each record apart) before any encoding or hashing.
// Timed as SignCost is; the file is removed after.
func WriteCost(dir string, n int, window time.Duration) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "gohsm-bench-write-cost-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rec := make([]byte, n)
	for i := range rec {
		rec[i] = 'a' + byte(i%26)
	}
	rec[n-1] = '\n'
	// Each round appends to an empty file, as a log grows (a window of a
	// second or less: tens of MB), and the file is emptied between rounds.
	return bestOf(window, func() error {
		_, err := f.Write(rec)
		return err
	}, func() error {
		if err := f.Truncate(0); err != nil {
			return err
		}
		_, err := f.Seek(0, 0)
		return err
	})
}

// bestOf runs f over and over on one locked thread for window, in five
// rounds (reset, if not nil, before each, untimed), and returns the
// smallest thread CPU per call of a round.
func bestOf(window time.Duration, f, reset func() error) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	threadCPU := func() (time.Duration, error) {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			return 0, fmt.Errorf("thread CPU clock: %w", err)
		}
		return time.Duration(ts.Nano()), nil
	}
	const rounds = 5
	best := time.Duration(0)
	for r := 0; r < rounds; r++ {
		if reset != nil {
			if err := reset(); err != nil {
				return 0, err
			}
		}
		c0, err := threadCPU()
		if err != nil {
			return 0, err
		}
		n := 0
		for end := time.Now().Add(window / rounds); time.Now().Before(end); n++ {
			if err := f(); err != nil {
				return 0, err
			}
		}
		c1, err := threadCPU()
		if err != nil {
			return 0, err
		}
		if n == 0 {
			continue
		}
		if per := (c1 - c0) / time.Duration(n); best == 0 || per < best {
			best = per
		}
	}
	if best <= 0 {
		return 0, fmt.Errorf("no call done in %v", window)
	}
	return best, nil
}
