package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Format is the genesis record's format member: what `gohsm audit verify`
// recognises a gateway log by.
const Format = "gohsm-gateway-audit/1"

// MaxLine bounds a record (a 10,000-item batch with every item HMAC'd is
// about 1.5 MB).
const MaxLine = 64 << 20

const zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Record types.
const (
	TypeGenesis  = "genesis"
	TypeOpen     = "open"
	TypeRequest  = "request"
	TypeResponse = "response"
)

// Auth is who made a request.
type Auth struct {
	// ClientToken is the secret sent (HMAC'd before it is written; empty
	// for a certificate identity or no token).
	ClientToken string
	Accessor    string // HMAC'd
	DisplayName string
	Policies    []string
	TokenType   string

	// hashed keeps the HMACs of ClientToken and Accessor made for the
	// first record, so a request's response record reuses them.
	hashed atomic.Pointer[authHashes]
}

// authHashes are an Auth's HMAC'd members under one log's key, with the
// values they were made from (checked on reuse).
type authHashes struct {
	h                     *hasher
	token, accessor       string
	tokenHMAC, accessHMAC []byte // quoted JSON strings
}

// hashes returns a's HMAC'd token and accessor under h, made once.
func (a *Auth) hashes(h *hasher) *authHashes {
	if p := a.hashed.Load(); p != nil && p.h == h && p.token == a.ClientToken && p.accessor == a.Accessor {
		return p
	}
	p := &authHashes{h: h, token: a.ClientToken, accessor: a.Accessor}
	p.tokenHMAC = hashOrEmpty(h, a.ClientToken)
	p.accessHMAC = hashOrEmpty(h, a.Accessor)
	a.hashed.Store(p)
	return p
}

// Seal makes a's HMAC'd members under this log's key now and forgets the
// secret (a.ClientToken becomes ""), so that the caller can keep one Auth
// per API token and reuse it for all of the token's requests: two HMACs
// per token instead of two per request, and no secret kept. A sealed Auth
// is for this Log only.
func (l *Log) Seal(a *Auth) *Auth {
	p := &authHashes{h: l.h, accessor: a.Accessor}
	p.tokenHMAC = hashOrEmpty(l.h, a.ClientToken)
	p.accessHMAC = hashOrEmpty(l.h, a.Accessor)
	a.ClientToken = ""
	a.hashed.Store(p)
	return a
}

func hashOrEmpty(h *hasher, s string) []byte {
	if s == "" {
		return []byte(`""`)
	}
	return h.appendHash(nil, s)
}

// Entry is one request or response to record.
type Entry struct {
	Type       string // TypeRequest or TypeResponse
	Time       time.Time
	ID         string
	Operation  string
	Path       string
	RemoteAddr string
	Auth       *Auth
	// Body is the raw request body or the response's data object (JSON);
	// it is parsed and its secrets HMAC'd. Data, if not nil, is used
	// instead: a value encoding/json's decoder could produce, or a
	// Redactable, which writes its own redaction (Body, if set, is then
	// the fallback for when it declines).
	Body   []byte
	Data   any
	Status int
	Error  string
	// Deferred: the record of a request without side effects (encrypt,
	// sign, a read). Write numbers and chains it and returns: it is
	// written with the next record that is written, its response record's
	// at the latest, and made durable by that record's fsync, before the
	// answer leaves. So such a request costs one write and one fsync, not
	// two of each, and still no answer leaves unrecorded (fail closed). A
	// request that turns out to change something after all (Vault's
	// upsert of a missing key on encrypt) calls Flush before the change.
	Deferred bool
}

// SyncMode is the fsync policy (doc.go).
type SyncMode int

const (
	SyncAlways   SyncMode = iota // fsync before Write returns (group commit)
	SyncInterval                 // fsync every Options.Interval in the background
	SyncNone                     // never fsync; the kernel writes back
)

// Options tune a Log. The zero value is SyncAlways.
type Options struct {
	Sync     SyncMode
	Interval time.Duration // SyncInterval's period (default 100 ms)
	Now      func() time.Time
	// WrapFile, for tests, stands between the Log and its file.
	WrapFile func(File) File
}

// File is what a Log writes to.
type File interface {
	io.Writer
	Sync() error
}

// Log is an open gateway audit log. Safe for concurrent use.
type Log struct {
	path string
	f    *os.File
	w    File
	h    *hasher
	opts Options

	mu     sync.Mutex
	seq    uint64 // last record numbered
	head   string // its hash
	queue  []byte // records numbered, not yet written
	spare  []byte // the last written queue's memory, for the next
	failed error
	closed bool
	dirty  bool // written since the last background fsync
	// Writing and fsyncing are separate (doc.go): one writer at a time
	// writes the queue, one syncer at a time writes the queue and fsyncs
	// (covering what was written when it began); a deferred record's
	// write never waits for an fsync in flight. Their progress is read
	// without the lock by the waiters; each round's channel is closed
	// when it ends, waking its waiters only.
	written   atomic.Uint64 // last record written to the file
	synced    atomic.Uint64 // last record fsynced
	writing   chan struct{} // not nil: a write in flight, closed when done
	syncing   chan struct{} // not nil: an fsync in flight, closed when done
	failedErr atomic.Pointer[error]
	stop      chan struct{}
	done      chan struct{}
}

// Open opens (or creates) the log at path with the default options: see
// OpenWith.
func Open(path string, hmacKey []byte) (*Log, error) { return OpenWith(path, hmacKey, Options{}) }

// OpenWith opens the log at path, creating it (0600) with a genesis
// record, or verifying an existing one whole and continuing its chain
// with an open record (a torn last line, from a crash mid-write, is cut
// and the cut noted). hmacKey (at least 32 bytes) HMACs the secrets.
func OpenWith(path string, hmacKey []byte, opts Options) (*Log, error) {
	if len(hmacKey) < 32 {
		return nil, fmt.Errorf("audit: an HMAC key of %d bytes; at least 32 are needed", len(hmacKey))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{path: path, f: f, w: f, h: newHasher(hmacKey), opts: opts}
	if opts.WrapFile != nil {
		l.w = opts.WrapFile(f)
	}
	var first []byte
	if fi.Size() == 0 {
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		var id [16]byte
		rand.Read(id[:])
		first = fmt.Appendf(nil, `"type":%q,"format":%q,"chain":%q,"key_id":%q`, TypeGenesis, Format, hex.EncodeToString(id[:]), KeyID(hmacKey))
		l.head = zeroHash
	} else {
		st, err := Verify(io.NewSectionReader(f, 0, fi.Size()))
		var be *BrokenError
		switch {
		case err == nil:
		case errors.As(err, &be) && be.Torn:
			if err := f.Truncate(st.End); err != nil {
				return nil, fmt.Errorf("audit: cutting a torn tail: %w", err)
			}
		default:
			return nil, fmt.Errorf("audit: refusing to open %s: %w", path, err)
		}
		if st.KeyID != KeyID(hmacKey) {
			return nil, fmt.Errorf("audit: %s was made under another audit key (key id %s, this key %s)", path, st.KeyID, KeyID(hmacKey))
		}
		note := ""
		if fi.Size() != st.End {
			note = fmt.Sprintf("cut a torn last line of %d bytes after record %d", fi.Size()-st.End, st.Records)
		}
		first = fmt.Appendf(nil, `"type":%q`, TypeOpen)
		if note != "" {
			first = fmt.Appendf(first, `,"note":%q`, note)
		}
		l.seq, l.head = st.Records, st.Head
		l.written.Store(st.Records)
		l.synced.Store(st.Records)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := l.append(first, true, true); err != nil {
		return nil, err
	}
	if opts.Sync == SyncInterval {
		l.stop, l.done = make(chan struct{}), make(chan struct{})
		go l.syncLoop()
	}
	ok = true
	return l, nil
}

// KeyID names an audit key without revealing it.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("gohsm-gateway-audit-key-id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Hash is HashValue under this log's key.
func (l *Log) Hash(s string) string { return l.h.hash(s) }

// Write records e and returns once it is written (and fsynced under
// SyncAlways). An error means the record is not known to be written: the
// caller must fail the request (fail closed).
func (l *Log) Write(e Entry) error {
	b, err := l.encode(&e)
	if err != nil {
		return err
	}
	err = l.append(b.Bytes(), false, !e.Deferred)
	putBuf(b)
	return err
}

// encode builds the members between seq and prev into a pooled buffer
// (give it back with putBuf once the record is queued).
func (l *Log) encode(e *Entry) (*bytes.Buffer, error) {
	t := e.Time
	if t.IsZero() {
		t = l.opts.Now()
	}
	b := getBuf()
	b.WriteString(`"time":"`)
	b.Write(t.UTC().AppendFormat(b.AvailableBuffer(), time.RFC3339Nano))
	b.WriteString(`","type":`)
	writeString(b, e.Type)
	if e.ID != "" {
		b.WriteString(`,"id":`)
		writeString(b, e.ID)
	}
	if e.Operation != "" {
		b.WriteString(`,"op":`)
		writeString(b, e.Operation)
	}
	b.WriteString(`,"path":`)
	writeString(b, e.Path)
	if e.RemoteAddr != "" {
		b.WriteString(`,"remote":`)
		writeString(b, e.RemoteAddr)
	}
	if a := e.Auth; a != nil {
		b.WriteString(`,"auth":{`)
		ah := a.hashes(l.h)
		b.WriteString(`"accessor":`)
		b.Write(ah.accessHMAC)
		b.WriteString(`,"client_token":`)
		b.Write(ah.tokenHMAC)
		b.WriteString(`,"display_name":`)
		writeString(b, a.DisplayName)
		b.WriteString(`,"policies":[`)
		for i, p := range a.Policies {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, p)
		}
		b.WriteString(`],"token_type":`)
		writeString(b, a.TokenType)
		b.WriteByte('}')
	}
	typed := false
	if rd, ok := e.Data.(Redactable); ok {
		mark := b.Len()
		b.WriteString(`,"data":`)
		rr := redactors.Get().(*redactor)
		rr.mac = l.h.pool.Get().(hash.Hash)
		var out []byte
		out, typed = rd.AppendRedacted(b.AvailableBuffer(), Redactor{r: rr})
		l.h.pool.Put(rr.mac)
		rr.mac = nil
		redactors.Put(rr)
		if typed {
			b.Write(out)
		} else {
			b.Truncate(mark)
		}
	}
	switch {
	case typed:
	case e.Data != nil && e.Body == nil:
		b.WriteString(`,"data":`)
		b.Write(l.h.redactValue(e.Data))
	case len(e.Body) > 0:
		mark := b.Len()
		b.WriteString(`,"data":`)
		if red, ok := l.h.appendRedacted(b.AvailableBuffer(), e.Body); ok {
			b.Write(red)
		} else {
			b.Truncate(mark)
			b.WriteString(`,"body_hmac":`)
			b.Write(l.h.appendHash(b.AvailableBuffer(), e.Body))
			b.WriteString(`,"body_bytes":`)
			b.WriteString(strconv.Itoa(len(e.Body)))
		}
	}
	if e.Status != 0 {
		b.WriteString(`,"status":`)
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Error != "" {
		b.WriteString(`,"error":`)
		writeString(b, e.Error)
	}
	if b.Len() > MaxLine-200 {
		n := b.Len()
		putBuf(b)
		return nil, fmt.Errorf("audit: a record of %d bytes, more than %d", n, MaxLine)
	}
	return b, nil
}

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	b := bufs.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 4<<20 {
		bufs.Put(b)
	}
}

// append numbers, chains and queues one record; unless deferred, it then
// waits until the record is written (the first waiter writes the whole
// queue: group commit) and, under SyncAlways, fsynced (waitSynced: one
// write and one fsync per group).
func (l *Log) append(members []byte, opening, durable bool) error {
	l.mu.Lock()
	if l.failed != nil {
		l.mu.Unlock()
		return l.failed
	}
	if l.closed && !opening {
		l.mu.Unlock()
		return errors.New("audit: log closed")
	}
	seq := l.seq + 1
	start := len(l.queue)
	q := append(l.queue, `{"seq":`...)
	q = strconv.AppendUint(q, seq, 10)
	q = append(q, ',')
	q = append(q, members...)
	q = append(q, `,"prev":"`...)
	q = append(q, l.head...)
	q = append(q, `"}`...)
	sum := sha256.Sum256(q[start:])
	q = append(q[:len(q)-1], `,"hash":"`...)
	q = hex.AppendEncode(q, sum[:])
	h := string(q[len(q)-2*sha256.Size:])
	q = append(q, "\"}\n"...)
	l.queue = q
	l.seq, l.head = seq, h
	l.mu.Unlock()

	switch {
	case !durable:
		return nil // queued: the next record written carries it
	case l.opts.Sync == SyncAlways:
		return l.waitSynced(seq)
	}
	return l.waitWritten(seq)
}

// Flush writes every record queued so far (deferred ones), without
// waiting for an fsync in flight: before a deferred request changes
// something, its record must be in the file.
func (l *Log) Flush() error {
	l.mu.Lock()
	seq := l.seq
	l.mu.Unlock()
	return l.waitWritten(seq)
}

// fail marks the log failed (under l.mu).
func (l *Log) fail(err error) {
	if l.failed == nil {
		l.failed = err
		l.failedErr.Store(&err)
	}
}

// failure is the log's error, read without the lock.
func (l *Log) failure() error {
	if p := l.failedErr.Load(); p != nil {
		return *p
	}
	return nil
}

// waitWritten returns once record seq is written, writing the queue
// itself if no one else is.
func (l *Log) waitWritten(seq uint64) error {
	for {
		if l.written.Load() >= seq {
			return nil
		}
		if err := l.failure(); err != nil {
			return err
		}
		l.mu.Lock()
		if l.written.Load() >= seq || l.failed != nil {
			l.mu.Unlock()
			continue
		}
		if ch := l.writing; ch != nil {
			l.mu.Unlock()
			<-ch
			continue
		}
		ch := make(chan struct{})
		l.writing = ch
		data, upto := l.queue, l.seq
		l.queue = l.spare[:0]
		l.spare = nil
		l.mu.Unlock()
		_, err := l.w.Write(data)
		l.mu.Lock()
		if err != nil {
			l.fail(fmt.Errorf("audit: writing %s failed, every further request is refused until a restart: %w", l.path, err))
		} else {
			l.written.Store(upto)
			l.dirty = true
		}
		if cap(data) <= 1<<20 {
			l.spare = data[:0]
		}
		l.writing = nil
		l.mu.Unlock()
		close(ch)
	}
}

// waitSynced returns once record seq is written and fsynced. While an
// fsync is in flight the record waits queued (that fsync cannot cover it
// anyway): the waiter that starts the next fsync first writes everything
// queued, so the records that arrived during one fsync share one write
// and the next fsync.
func (l *Log) waitSynced(seq uint64) error {
	for {
		if l.synced.Load() >= seq {
			return nil
		}
		if err := l.failure(); err != nil {
			return err
		}
		l.mu.Lock()
		if l.synced.Load() >= seq || l.failed != nil {
			l.mu.Unlock()
			continue
		}
		if ch := l.syncing; ch != nil {
			l.mu.Unlock()
			<-ch
			continue
		}
		ch := make(chan struct{})
		l.syncing = ch
		l.mu.Unlock()
		werr := l.waitWritten(seq) // a write error fails the log
		upto := l.written.Load()   // >= seq: what this fsync covers
		var err error
		if werr == nil {
			err = l.w.Sync()
		}
		l.mu.Lock()
		if err != nil {
			l.fail(fmt.Errorf("audit: fsync of %s failed, every further request is refused until a restart: %w", l.path, err))
		} else if werr == nil && upto > l.synced.Load() {
			l.synced.Store(upto)
		}
		l.syncing = nil
		l.mu.Unlock()
		close(ch)
	}
}

func (l *Log) syncLoop() {
	defer close(l.done)
	t := time.NewTicker(l.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Flush() // deferred records queued with no record after them yet
			l.mu.Lock()
			dirty := l.dirty && l.failed == nil
			l.dirty = false
			l.mu.Unlock()
			if dirty {
				if err := l.w.Sync(); err != nil {
					l.mu.Lock()
					l.fail(fmt.Errorf("audit: fsync of %s failed, every further request is refused until a restart: %w", l.path, err))
					l.mu.Unlock()
				}
			}
		}
	}
}

// Head returns the last record's number and hash (keep it elsewhere to
// detect a log cut short). A deferred record counts from the moment it is
// queued: read the head after Flush or Close for one the file holds.
func (l *Log) Head() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.head
}

// Err reports why the log failed (nil while it works).
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Path is the log's file.
func (l *Log) Path() string { return l.path }

// Close syncs and closes the file; later Writes fail.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	seq := l.seq
	l.mu.Unlock()
	werr := l.waitWritten(seq) // deferred records still queued
	l.mu.Lock()
	for l.writing != nil || l.syncing != nil {
		w, sy := l.writing, l.syncing
		l.mu.Unlock()
		if w != nil {
			<-w
		}
		if sy != nil {
			<-sy
		}
		l.mu.Lock()
	}
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		<-l.done
	}
	err := l.f.Sync()
	return errors.Join(werr, err, l.f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
