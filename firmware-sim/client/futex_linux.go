package client

import (
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// haveFutex: Config.WaitInKernel works here.
const haveFutex = true

const (
	futexWaitPrivate = 0 | 128 // FUTEX_WAIT | FUTEX_PRIVATE_FLAG (futex(2))
	futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
)

// futexWait sleeps in the kernel while w holds 0, for at most d (a
// wake-up, a signal or a spurious return end it earlier: callers loop).
// The Go heap does not move objects, so w's address is stable.
func futexWait(w *atomic.Uint32, d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWaitPrivate, 0,
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake sets w and wakes the thread sleeping on it, if any.
func futexWake(w *atomic.Uint32) {
	w.Store(1)
	syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWakePrivate, 1, 0, 0, 0)
}
