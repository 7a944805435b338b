package main

import (
	"sync"

	"github.com/gohsm/gohsm/internal/conf"
)

// The module's Go heap is small (a few megabytes for a token of a few
// hundred keys) while every call allocates short-lived buffers, so with the
// collector's default pacing (GOGC=100: collect when the heap doubles, from
// a 4 MB floor) it collects dozens of times a second under load. In a C
// host each collection must stop the host's threads that are inside the
// module (they are locked to their goroutines), which costs those threads
// far more than the collection itself: measured from the C host
// (bench/chost), ML-KEM-768 encapsulation with its key object ran 10-30%
// slower at 1 and 2 threads than with collections four times rarer.
//
// gcFloor raises the floor instead of the ratio: a 32 MiB allocation that
// is never written counts as live heap, so collections start at about
// 64 MiB plus twice the real live heap, while a large token's heap still
// grows by the default ratio (GOGC=400 would let a 200 MB token reach 1 GB).
// The allocation has no pointers (never scanned) and is never touched; the
// memory it costs is the garbage let accumulate between collections:
// measured peak RSS of the C-host ML-KEM run 54 MB against 22 MB without
// (a 16 MiB floor gave 37 MB and 130-150k ops/s at 2 threads, against
// 155-161k). An operator who sets GOGC or GOMEMLIMIT for the process gets
// exactly that instead.
var (
	gcFloorOnce sync.Once
	gcFloor     []byte
)

const gcFloorSize = 32 << 20

func raiseGCFloor(env conf.Getenv) {
	gcFloorOnce.Do(func() {
		if env("GOGC") != "" || env("GOMEMLIMIT") != "" {
			return
		}
		gcFloor = make([]byte, gcFloorSize)
	})
}
