package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
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
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	threadCPU := func() (time.Duration, error) {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			return 0, fmt.Errorf("sign cost: thread CPU clock: %w", err)
		}
		return time.Duration(ts.Nano()), nil
	}
	const rounds = 5
	best := time.Duration(0)
	for r := 0; r < rounds; r++ {
		c0, err := threadCPU()
		if err != nil {
			return 0, err
		}
		n := 0
		for end := time.Now().Add(window / rounds); time.Now().Before(end); n++ {
			if _, _, err := ecdsa.Sign(rand.Reader, priv, digest[:]); err != nil {
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
		return 0, fmt.Errorf("sign cost: no signature in %v", window)
	}
	return best, nil
}
