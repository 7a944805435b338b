package tokens

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// changeCounter is a word of shared memory beside a token's database
// (<file>-gohsm-changes, mapped MAP_SHARED by every process that opens the
// token) that every writer bumps around each commit. It lets Changed answer
// "nothing changed" with one atomic load instead of an SQLite read, so the
// engine can ask it on every operation's init: a key whose CKA_SIGN another
// process turned off stops signing here at once, not at this process's
// next search.
//
// It is a seqlock: a writer, holding SQLite's write lock, makes the counter
// odd before COMMIT and even after. A reader that sees an even value it
// has already verified against the database knows nothing was committed
// since; any other value sends it to the database (Store.Changed), and it
// records the value as verified only if it was even before that read, so a
// commit in flight is never taken as seen. A writer that died between the
// two bumps leaves the counter odd; the next writer (who holds the write
// lock, so the dead one is finished) makes it even first. The counter is
// only ever a hint to skip a read: when it cannot be mapped, Changed reads
// the database every time, as before.
type changeCounter struct {
	f    *os.File
	mem  []byte
	word *uint64
}

const changeCounterSuffix = "-gohsm-changes"

// openChangeCounter maps the counter file of the database at path,
// creating it (mode 0600) if needed.
func openChangeCounter(path string) (*changeCounter, error) {
	f, err := os.OpenFile(path+changeCounterSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	const size = 64 // one cache line
	if fi, err := f.Stat(); err != nil {
		f.Close()
		return nil, err
	} else if fi.Size() < size {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, err
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	return &changeCounter{f: f, mem: mem, word: (*uint64)(unsafe.Pointer(&mem[0]))}, nil
}

func (c *changeCounter) load() uint64 { return atomic.LoadUint64(c.word) }

// beginWrite marks a commit in flight; the caller holds the database's
// write lock.
func (c *changeCounter) beginWrite() {
	if atomic.LoadUint64(c.word)%2 == 1 {
		atomic.AddUint64(c.word, 1) // a writer died mid-commit
	}
	atomic.AddUint64(c.word, 1)
}

// endWrite marks it over (committed or rolled back).
func (c *changeCounter) endWrite() { atomic.AddUint64(c.word, 1) }

func (c *changeCounter) close() error {
	err := unix.Munmap(c.mem)
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	return err
}
