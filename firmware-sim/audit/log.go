package audit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Errors of Append. Every error of Append means the record is not (or not
// known to be) on disk; an audited call that gets one fails.
var (
	ErrClosed   = errors.New("audit log closed")
	ErrTooLarge = fmt.Errorf("audit record longer than %d bytes", MaxLine)
)

// File is what the log writes to: the opened *os.File unless
// Options.WrapFile puts something in front of it.
type File interface {
	io.Writer
	Sync() error
}

// Options configure Open. The zero value is a plain SHA-256 chain.
type Options struct {
	// Key, when not nil, makes every link an HMAC-SHA256 under it, so
	// that someone who can rewrite the file cannot recompute the chain.
	// At least 32 bytes; Open keeps its own copy and Close zeroises it.
	Key []byte
	// RecoverTornTail lets Open cut off a last line without a newline
	// (a write cut short by a crash or a full disk: never acknowledged,
	// since a record counts only once fsynced) when every record before it
	// is good. The audit.open record then says how many bytes were cut and
	// their SHA-256. Off, such a log refuses to open, like any other break.
	RecoverTornTail bool
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// WrapFile, for tests, puts a writer in front of the file (to inject
	// write and fsync failures). nil writes to the file itself.
	WrapFile func(File) File
}

// Log is an open audit log, appended to by one writer at a time; it is safe
// for concurrent use.
type Log struct {
	path  string
	chain string
	key   []byte
	now   func() time.Time
	file  *os.File
	w     File

	mu     sync.Mutex // serialises writers: seq, head, the write itself
	seq    uint64     // last record written
	head   string     // its hash
	failed error      // sticky: a write or sync failed, nothing more is written
	closed bool

	syncMu     sync.Mutex // one fsync at a time (group commit)
	synced     uint64     // last record known durable
	syncedHead string
}

// Open opens the log at path, creating it (mode 0600) with a genesis record
// when it is new or empty. An existing log is verified whole before
// anything is appended (with opts.Key: a keyed log needs its key, a plain
// one refuses a key); a broken one is not opened, and the error is a
// *ChainError naming its first bad record. The chain then continues with an
// audit.open record. The file is locked (flock) against a second writer.
func Open(path string, opts Options) (*Log, error) {
	if opts.Key != nil && len(opts.Key) < 32 {
		return nil, fmt.Errorf("audit: an HMAC key of %d bytes; at least 32 are needed", len(opts.Key))
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	if err := lockFile(f); err != nil {
		return nil, fmt.Errorf("audit: %s is in use by another writer: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{path: path, now: opts.Now, file: f, w: File(f)}
	if opts.Key != nil {
		l.key = append([]byte(nil), opts.Key...)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if opts.WrapFile != nil {
		l.w = opts.WrapFile(f)
	}
	first := Record{Who: "local"}
	if fi.Size() == 0 {
		// A new file: make its directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		l.chain = hex.EncodeToString(id[:])
		first.Call, first.Chain, first.Version, first.MAC = CallGenesis, l.chain, FormatVersion, MACSHA256
		if l.key != nil {
			first.MAC, first.KeyID = MACHMAC, KeyID(l.key)
		}
		l.head = zeroHash
	} else {
		st, err := scan(io.NewSectionReader(f, 0, fi.Size()), l.key, nil)
		var ce *ChainError
		switch {
		case err == nil:
		case errors.As(err, &ce) && ce.Torn && opts.RecoverTornTail:
			tail := make([]byte, fi.Size()-st.end)
			if _, err := f.ReadAt(tail, st.end); err != nil {
				return nil, fmt.Errorf("audit: %w", err)
			}
			if err := f.Truncate(st.end); err != nil {
				return nil, fmt.Errorf("audit: cutting the torn tail: %w", err)
			}
			first.Note = fmt.Sprintf("cut a torn last line of %d bytes (sha256 %x) after record %d", len(tail), sha256.Sum256(tail), st.seq)
		default:
			return nil, fmt.Errorf("audit: refusing to open %s: %w", path, err)
		}
		first.Call = CallOpen
		l.seq, l.head, l.chain = st.seq, st.head, st.chain
	}
	l.synced, l.syncedHead = l.seq, l.head
	if _, err := l.Append(first); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// Append writes r as the next record and returns once it is on disk
// (fsynced); Seq, Time, Prev and Hash are filled in, the rest is the
// caller's. Writers are serialised; concurrent appends share fsyncs (group
// commit). An error means the record is not known to be durable; a write or
// fsync error also marks the log failed, and every later Append returns an
// error until the log is reopened (after a restart).
func (l *Log) Append(r Record) (uint64, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		return 0, err
	}
	r.Seq, r.Time, r.Prev = l.seq+1, l.now().UTC().Format(timeFormat), l.head
	body := r.body(make([]byte, 0, 256))
	r.Hash = linkHash(l.key, body)
	line := r.line()
	if len(line) > MaxLine {
		l.mu.Unlock()
		return 0, ErrTooLarge
	}
	if n, err := l.w.Write(line); err != nil || n != len(line) {
		if err == nil {
			err = io.ErrShortWrite
		}
		l.failed = fmt.Errorf("audit log %s failed writing record %d: %w", l.path, r.Seq, err)
		err = l.failed
		l.mu.Unlock()
		return 0, err
	}
	l.seq, l.head = r.Seq, r.Hash
	l.mu.Unlock()
	return r.Seq, l.syncTo(r.Seq)
}

// syncTo returns once record seq is durable. Whoever holds syncMu fsyncs
// every record written so far, so concurrent appends wait for one fsync,
// not one each.
func (l *Log) syncTo(seq uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= seq {
		return nil
	}
	l.mu.Lock()
	target, head, failed := l.seq, l.head, l.failed
	l.mu.Unlock()
	if failed != nil {
		return failed
	}
	if err := l.w.Sync(); err != nil {
		// An fsync error is not retried: the kernel may have dropped the
		// dirty pages, so a later success would prove nothing.
		l.mu.Lock()
		if l.failed == nil {
			l.failed = fmt.Errorf("audit log %s failed syncing records %d-%d: %w", l.path, l.synced+1, target, err)
		}
		err = l.failed
		l.mu.Unlock()
		return err
	}
	l.synced, l.syncedHead = target, head
	return nil
}

// Head returns the last durable record's sequence number and hash. Keep it
// elsewhere (the appliance logs it at each start): a log cut at a line
// boundary still verifies, and only a head kept outside the file shows the
// cut.
func (l *Log) Head() (seq uint64, hash string) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.synced, l.syncedHead
}

// Err returns the error that failed the log, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Chain returns the log's chain id (its genesis record's "chain"): with
// Head, what to keep outside the file.
func (l *Log) Chain() string { return l.chain }

// Path returns the log's file name.
func (l *Log) Path() string { return l.path }

// Close appends an audit.close record (unless the log has failed), makes
// everything durable, zeroises the key and closes the file. Appends after
// Close return ErrClosed.
func (l *Log) Close() error {
	_, cerr := l.Append(Record{Who: "local", Call: CallClose})
	if errors.Is(cerr, ErrClosed) {
		return ErrClosed
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	last := l.seq
	l.mu.Unlock()
	serr := l.syncTo(last)
	l.syncMu.Lock()
	clear(l.key)
	ferr := l.file.Close()
	l.syncMu.Unlock()
	return errors.Join(cerr, serr, ferr)
}

// ReadKeyFile reads an HMAC key file, the one rule shared by the appliance
// and the verifier: the file's bytes exactly as they are (make one with
// `head -c 32 /dev/urandom > audit.key; chmod 600 audit.key`), at least 32.
func ReadKeyFile(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("audit key %s: %d bytes; at least 32 are needed", path, len(key))
	}
	return key, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
