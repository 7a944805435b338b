//go:build !linux

package client

import (
	"sync/atomic"
	"time"
)

// haveFutex: Config.WaitInKernel is ignored here; callers wait on the
// request's channel.
const haveFutex = false

func futexWait(*atomic.Uint32, time.Duration) {}

func futexWake(w *atomic.Uint32) { w.Store(1) }
