package client

import (
	"sync"

	"golang.org/x/sys/unix"
)

// secret holds a PIN the client needs to log its sessions back in after a
// reconnect. It lives outside the Go heap, in pages of its own that are
// locked in memory (mlock: never written to swap) and excluded from core
// dumps (MADV_DONTDUMP), and it is zeroised, unlocked and unmapped by
// destroy: at C_Logout, C_Finalize, when the application's last session on
// the token closes, and when a re-login with it fails. If the process may
// not lock memory (RLIMIT_MEMLOCK), the pages are still private and
// zeroised; the client logs that once.
type secret struct {
	mem    []byte
	n      int
	mapped bool // mem is an mmap of its own
	locked bool
}

var mlockWarn sync.Once

func newSecret(b []byte, logf func(string, ...any)) *secret {
	page := unix.Getpagesize()
	size := (len(b) + page - 1) / page * page
	if size == 0 {
		size = page
	}
	s := &secret{n: len(b)}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		// No mapping: keep a heap copy, still zeroised on destroy.
		s.mem = make([]byte, len(b))
		copy(s.mem, b)
		return s
	}
	_ = unix.Madvise(mem, unix.MADV_DONTDUMP)
	if err := unix.Mlock(mem); err == nil {
		s.locked = true
	} else if logf != nil {
		mlockWarn.Do(func() { logf("cannot lock the PIN's memory (%v): it may be swapped", err) })
	}
	s.mem, s.mapped = mem, true
	copy(s.mem, b)
	return s
}

// bytes is the secret; do not keep it past destroy.
func (s *secret) bytes() []byte { return s.mem[:s.n] }

// destroy zeroises and releases the secret. It is safe on nil.
func (s *secret) destroy() {
	if s == nil || s.mem == nil {
		return
	}
	clear(s.mem)
	if s.mapped {
		if s.locked {
			_ = unix.Munlock(s.mem)
		}
		_ = unix.Munmap(s.mem)
	}
	s.mem = nil
}
