package tokens

import (
	"bytes"
	"context"
	"crypto/hmac"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Store is one token in one SQLite file. It implements hsm.Store, plus the
// change tracking (Generation, Changed, ObjectsSince) and indexed lookups
// (Object, FindIDs) that the engine can use to share a token with other
// processes and to search without scanning. It is safe for concurrent use.
type Store struct {
	path string
	db   *sql.DB

	// wmu queues this process's writers so that they wait in line here
	// instead of in SQLite's busy handler, which polls with sleeps;
	// busy_timeout is left for writers in other processes.
	wmu sync.Mutex

	mu sync.Mutex
	// tokenSeen and objectsSeen are the generations at which the caller
	// last read the token record and the object set (see Changed).
	tokenSeen, objectsSeen uint64
	// [idNext, idEnd) is a block of ids reserved in the file for this
	// Store, so that NewObjectID costs one commit per idBlock ids.
	idNext, idEnd uint64
	closed        bool

	// mac computes and checks the rows' MACs (mac.go); its key is read
	// once at open and never changes.
	mac *macer

	// changes is the shared change counter (changecounter.go), nil when
	// it could not be mapped; verified is 1 + the last even value of it
	// that Changed checked against the database (0: none).
	changes  *changeCounter
	verified atomic.Uint64
}

// idBlock is how many object ids one commit reserves. Ids a process
// reserved but did not use are lost when it exits; they are never reused.
const idBlock = 64

// maxConns bounds the connections of one Store. Writes are serialised
// anyway (SQLite has one writer), but in WAL mode readers do not wait for a
// writer: with a few connections a session calling Changed or FindIDs is not
// stuck behind another session's commit and its fsync. Each connection costs
// a page cache (2 MiB at most by default), so the pool stays small.
const maxConns = 4

// busyTimeout is how long a statement waits for a lock another process
// holds before failing with CKR_DEVICE_ERROR. Write transactions are short
// (one object), so only a stuck process holds a lock this long.
const busyTimeoutMS = 10000

// dsn builds a SQLite URI for path. mode is "rw" for token files found on
// disk (a missing file is an error, never a fresh empty token) and "rwc" for
// a file being created.
//
// synchronous=NORMAL is the connections' default, and write switches a
// connection to FULL for every commit that must survive a power cut (see
// durability). In WAL mode both survive a kill -9: a commit's pages are in
// the WAL file, in the OS page cache, when COMMIT returns.
func dsn(path, mode string) string {
	u := url.URL{Scheme: "file", Path: path}
	q := url.Values{}
	q.Set("mode", mode)
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// A damaged file must not be made worse by following a corrupt
	// pointer into other data; cell_size_check makes SQLite verify each
	// b-tree cell's size as it reads a page.
	q.Add("_pragma", "cell_size_check(1)")
	u.RawQuery = q.Encode()
	return u.String()
}

// openStore opens the token database at path. create allows an empty file
// and writes the schema into it.
func openStore(path string, create bool) (*Store, error) {
	mode := "rw"
	if create {
		mode = "rwc"
		if err := initFile(path); err != nil {
			return nil, storageErr(path, "create", err)
		}
	}
	db, err := sql.Open("sqlite", dsn(path, mode))
	if err != nil {
		return nil, storageErr(path, "open", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	s := &Store{path: path, db: db}
	ctx := context.Background()
	if err := migrate(ctx, db, create); err != nil {
		db.Close()
		return nil, storageErr(path, "open", err)
	}
	if err := s.quickCheck(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if s.mac, err = loadMACKey(ctx, db); err != nil {
		db.Close()
		return nil, storageErr(path, "open", err)
	}
	return s, nil
}

// shareChanges maps the token's shared change counter, for a store opened
// for use by the engine (Dir.Stores, a created or restored token), not for
// the temporary files of Create and Restore. Without it Changed reads the
// database every time: slower, never wrong.
func (s *Store) shareChanges() {
	s.changes, _ = openChangeCounter(s.path)
}

// pageSize is set when a file is created (it cannot change once the file
// is in WAL mode). Measured at 100,000 objects: 16 KiB pages load a token
// 20% faster (556 vs 680 ms) but make a single-object commit 2.5x slower
// (each commit writes its dirty pages whole to the WAL), and 64 KiB 40%
// faster and 5x slower. Commits (key generation, PIN counters) happen all
// day, loads once per process, so SQLite's default stays.
var pageSize = 4096

// initFile fixes the page size of a new, empty file and puts it in WAL mode
// before anything else touches it.
func initFile(path string) error {
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=rwc"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(fmt.Sprintf("PRAGMA page_size = %d; PRAGMA journal_mode = WAL", pageSize))
	return err
}

// quickCheck runs PRAGMA quick_check: every page of every table and index
// is read and its b-tree structure checked, which catches a damaged file at
// open rather than on some later query. It does not compare indexes with
// their tables (integrity_check does; see Check). Its cost is one read of
// the file: ~200 ms for 100,000 RSA-key-sized objects (204 MiB), against
// ~500 ms for the Objects() walk the engine does after open anyway
// (TestLargeToken logs both). A token of a few thousand objects pays a few
// milliseconds, which buys a clear error at open instead of at some later
// write into a broken b-tree.
func (s *Store) quickCheck(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return storageErr(s.path, "quick_check", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			return storageErr(s.path, "quick_check", err)
		}
		if msg != "ok" && len(problems) < 5 {
			problems = append(problems, strings.ReplaceAll(msg, "\n", " "))
		}
	}
	if err := rows.Err(); err != nil {
		return storageErr(s.path, "quick_check", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("token store %s: damaged: %s: %w", s.path, strings.Join(problems, "; "), ck.CKR_DEVICE_ERROR)
	}
	return nil
}

// Check runs the full PRAGMA integrity_check (quick_check plus index
// against table consistency) and then reads and verifies every row. It is
// for an offline "token check" command, not for every open: it costs
// several times an open.
func (s *Store) Check() error {
	ctx := context.Background()
	rows, err := s.db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return storageErr(s.path, "integrity_check", err)
	}
	var problems []string
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			rows.Close()
			return storageErr(s.path, "integrity_check", err)
		}
		if msg != "ok" && len(problems) < 5 {
			problems = append(problems, strings.ReplaceAll(msg, "\n", " "))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return storageErr(s.path, "integrity_check", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("token store %s: damaged: %s: %w", s.path, strings.Join(problems, "; "), ck.CKR_DEVICE_ERROR)
	}
	if _, err := s.LoadToken(); err != nil {
		return err
	}
	return s.Objects(func(*hsm.ObjectRecord) error { return nil })
}

// Path is the file that holds the token.
func (s *Store) Path() string { return s.path }

// Close closes the database; the last connection to close checkpoints the
// WAL into the main file. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.db.Close()
	if s.changes != nil {
		if cerr := s.changes.close(); err == nil {
			err = cerr
		}
	}
	return storageErr(s.path, "close", err)
}

// errNoChange makes write roll back without error when there was nothing to
// change, so that other processes are not told about a change that is not.
var errNoChange = errors.New("no change")

// durability says whether a commit is fsynced before it returns.
//
// fsynced (synchronous=FULL, ~0.35 ms on this project's reference disk):
// the token record (PIN retry counters: losing a failure count to a power
// cut would give a PIN guesser free tries), Reinit, deletes, and every
// change to an existing object (CKA_SENSITIVE going true, CKA_EXTRACTABLE
// going false, a destroy: none may come undone).
//
// not fsynced (synchronous=NORMAL, ~0.04 ms): the insert of a new object,
// which is what makes creating objects 5-10x faster. Such a commit survives
// a kill -9 of any process (it is in the OS cache), and becomes durable
// against power loss at the next fsynced commit or WAL checkpoint — whichever
// process makes it, since an fsync of the WAL file covers every frame
// before it. A power cut or OS crash before that loses the newest created
// objects, as a whole and newest first (SQLite's WAL recovery keeps a
// checksummed prefix of commits), never part of one and never anything
// older; SoftHSMv2 does not fsync its object files at all.
type durability bool

const (
	cached  durability = false
	fsynced durability = true
)

// changeDurability is how a Commit of ch is made durable: cached only for
// the insert of one new object and nothing else written (Require writes
// nothing; a Require-only change commits nothing at all), fsynced for
// anything that replaces, deletes or writes several objects.
func changeDurability(ch *hsm.Change) durability {
	if len(ch.Delete) == 0 && (len(ch.Put) == 0 || len(ch.Put) == 1 && ch.Put[0].Gen == 0) {
		return cached
	}
	return fsynced
}

// write runs fn in one IMMEDIATE transaction (the write lock is taken at
// BEGIN, so the transaction cannot fail half-way on a lock upgrade) and
// bumps the generation. fn gets the generation its changes are stamped
// with.
func (s *Store) write(what string, dur durability, fn func(ctx context.Context, c *sql.Conn, gen uint64) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ctx := context.Background()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return storageErr(s.path, what, err)
	}
	defer c.Close()
	if dur == fsynced {
		// SQLite refuses to change the level inside a transaction, so it
		// is set around it. A connection left at FULL by a failed reset
		// is only slower, never less safe.
		if _, err := c.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
			return storageErr(s.path, what, err)
		}
		defer c.ExecContext(ctx, "PRAGMA synchronous = NORMAL")
	}
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return storageErr(s.path, what, err)
	}
	if s.changes != nil {
		// Odd while the commit is in flight (changecounter.go); the write
		// lock is held, so no other writer bumps it meanwhile.
		s.changes.beginWrite()
		defer s.changes.endWrite()
	}
	var old int64
	err = c.QueryRowContext(ctx, "SELECT generation FROM meta").Scan(&old)
	if err == nil {
		err = fn(ctx, c, uint64(old)+1)
	}
	if err == nil {
		_, err = c.ExecContext(ctx, "UPDATE meta SET generation = ?", old+1)
	}
	if err == nil {
		_, err = c.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		rollback(ctx, c)
		if errors.Is(err, errNoChange) {
			return nil
		}
		return storageErr(s.path, what, err)
	}
	// A view that was current before this commit is current after it: the
	// engine applies its own writes to what it holds.
	s.mu.Lock()
	if s.tokenSeen == uint64(old) {
		s.tokenSeen++
	}
	if s.objectsSeen == uint64(old) {
		s.objectsSeen++
	}
	s.mu.Unlock()
	return nil
}

// read runs fn in one read transaction: everything fn reads comes from one
// snapshot, the one whose generation fn gets. Writers (of this or another
// process) are not blocked by it in WAL mode.
func (s *Store) read(what string, fn func(ctx context.Context, c *sql.Conn, gen uint64) error) error {
	ctx := context.Background()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return storageErr(s.path, what, err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		return storageErr(s.path, what, err)
	}
	var gen int64
	err = c.QueryRowContext(ctx, "SELECT generation FROM meta").Scan(&gen)
	if err == nil {
		err = fn(ctx, c, uint64(gen))
	}
	if err == nil {
		_, err = c.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		rollback(ctx, c)
		return storageErr(s.path, what, err)
	}
	return nil
}

// LoadToken returns the token record, or (nil, nil) before the first
// SaveToken or Reinit.
func (s *Store) LoadToken() (*hsm.TokenRecord, error) {
	var rec *hsm.TokenRecord
	err := s.read("load token", func(ctx context.Context, c *sql.Conn, gen uint64) error {
		var err error
		rec, _, err = s.loadToken(ctx, c)
		if err == nil {
			s.mu.Lock()
			s.tokenSeen = gen
			s.mu.Unlock()
		}
		return err
	})
	return rec, err
}

// loadToken reads the token record and verifies its CRC and MAC.
func (s *Store) loadToken(ctx context.Context, c *sql.Conn) (*hsm.TokenRecord, uint64, error) {
	r, gen, crc, mac, err := readToken(ctx, c)
	if err != nil || r == nil {
		return nil, 0, err
	}
	if tokenCRC(r) != crc {
		return nil, 0, fmt.Errorf("token record fails its checksum: %w", ck.CKR_DEVICE_ERROR)
	}
	if len(mac) == 0 {
		return nil, 0, fmt.Errorf("token record has no MAC: %w", ck.CKR_DEVICE_ERROR)
	}
	if !hmac.Equal(mac, s.mac.token(gen, r)) {
		return nil, 0, fmt.Errorf("token record fails its MAC (changed outside gohsm): %w", ck.CKR_DEVICE_ERROR)
	}
	return r, gen, nil
}

// readToken reads the token row as stored, unverified; (nil, ...) when
// there is none.
func readToken(ctx context.Context, c *sql.Conn) (r *hsm.TokenRecord, gen uint64, crc int64, mac []byte, err error) {
	r = &hsm.TokenRecord{}
	var g int64
	err = c.QueryRowContext(ctx, `SELECT gen, label, serial, user_pin_set, so_failures, user_failures,
		so_kdf, so_salt, so_iterations, so_nonce, so_sealed,
		user_kdf, user_salt, user_iterations, user_nonce, user_sealed, public_key, crc, mac FROM token`).Scan(
		&g, &r.Label, &r.Serial, &r.UserPINSet, &r.SOFailures, &r.UserFailures,
		&r.SOKey.KDF, &r.SOKey.Salt, &r.SOKey.Iterations, &r.SOKey.Nonce, &r.SOKey.Sealed,
		&r.UserKey.KDF, &r.UserKey.Salt, &r.UserKey.Iterations, &r.UserKey.Nonce, &r.UserKey.Sealed,
		&r.PublicKey, &crc, &mac)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, 0, nil, nil
	}
	if err != nil {
		return nil, 0, 0, nil, err
	}
	return r, uint64(g), crc, mac, nil
}

// SaveToken replaces the token record.
func (s *Store) SaveToken(r *hsm.TokenRecord) error {
	return s.write("save token", fsynced, func(ctx context.Context, c *sql.Conn, gen uint64) error {
		return s.saveToken(ctx, c, gen, r)
	})
}

func (s *Store) saveToken(ctx context.Context, c *sql.Conn, gen uint64, r *hsm.TokenRecord) error {
	nz := func(b []byte) []byte {
		if b == nil {
			return []byte{}
		}
		return b
	}
	_, err := c.ExecContext(ctx, `INSERT OR REPLACE INTO token (k, gen, label, serial, user_pin_set, so_failures, user_failures,
		so_kdf, so_salt, so_iterations, so_nonce, so_sealed,
		user_kdf, user_salt, user_iterations, user_nonce, user_sealed, public_key, crc, mac)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		int64(gen), r.Label, r.Serial, r.UserPINSet, r.SOFailures, r.UserFailures,
		r.SOKey.KDF, nz(r.SOKey.Salt), r.SOKey.Iterations, nz(r.SOKey.Nonce), nz(r.SOKey.Sealed),
		r.UserKey.KDF, nz(r.UserKey.Salt), r.UserKey.Iterations, nz(r.UserKey.Nonce), nz(r.UserKey.Sealed),
		nz(r.PublicKey), tokenCRC(r), s.mac.token(gen, r))
	return err
}

// UpdateToken is one read-modify-write of the token record under the
// write lock, so PIN counters stay exact across processes.
func (s *Store) UpdateToken(fn func(*hsm.TokenRecord) error) (*hsm.TokenRecord, error) {
	var out *hsm.TokenRecord
	err := s.write("update token", fsynced, func(ctx context.Context, c *sql.Conn, gen uint64) error {
		rec, _, err := s.loadToken(ctx, c)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("update token: %w", hsm.ErrNoToken)
		}
		if err := fn(rec); err != nil {
			return err
		}
		if err := s.saveToken(ctx, c, gen, rec); err != nil {
			return err
		}
		out = rec
		return nil
	})
	return out, err
}

// Reinit replaces the token record and removes every object in one
// transaction (C_InitToken). Ids are not reset: an id is never reused. The
// removed objects become tombstones like any deleted object, so that a
// process that still holds one can never store it again (Commit); readers
// of an older generation reload everything (Delta.Reset) and do not read
// tombstones.
func (s *Store) Reinit(r *hsm.TokenRecord) error {
	return s.write("reinit", fsynced, func(ctx context.Context, c *sql.Conn, gen uint64) error {
		if _, err := c.ExecContext(ctx, "INSERT OR REPLACE INTO tombstones (id, gen) SELECT id, ? FROM objects", int64(gen)); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, "DELETE FROM objects"); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, "UPDATE meta SET reset_gen = ?", int64(gen)); err != nil {
			return err
		}
		return s.saveToken(ctx, c, gen, r)
	})
}

const objectColumns = "id, gen, private, attrs, sealed, crc, mac"

// scanObject reads one row of objectColumns and verifies its checksum and
// its MAC.
func (s *Store) scanObject(rows *sql.Rows) (*hsm.ObjectRecord, error) {
	var (
		id, gen int64
		private bool
		attrs   sql.RawBytes
		sealed  []byte
		crc     int64
		mac     sql.RawBytes
	)
	if err := rows.Scan(&id, &gen, &private, &attrs, &sealed, &crc, &mac); err != nil {
		return nil, err
	}
	if objectCRC(uint64(id), private, attrs, sealed) != crc {
		return nil, fmt.Errorf("object %d fails its checksum: %w", id, ck.CKR_DEVICE_ERROR)
	}
	if len(mac) == 0 {
		return nil, fmt.Errorf("object %d has no MAC: %w", id, ck.CKR_DEVICE_ERROR)
	}
	if !hmac.Equal(mac, s.mac.object(uint64(id), uint64(gen), private, attrs, sealed)) {
		return nil, fmt.Errorf("object %d fails its MAC (changed outside gohsm): %w", id, ck.CKR_DEVICE_ERROR)
	}
	a, err := decodeAttrs(attrs)
	if err != nil {
		return nil, fmt.Errorf("object %d: %w", id, err)
	}
	if len(sealed) == 0 {
		sealed = nil
	}
	return &hsm.ObjectRecord{ID: uint64(id), Gen: uint64(gen), Private: private, Attrs: a, Sealed: sealed}, nil
}

// querier is a *sql.Conn inside a transaction, or the *sql.DB for a single
// statement (which SQLite runs on one snapshot by itself).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) eachObject(ctx context.Context, c querier, fn func(*hsm.ObjectRecord) error, query string, args ...any) error {
	rows, err := c.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		o, err := s.scanObject(rows)
		if err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Objects calls fn for every stored object, in id order, from one
// snapshot. An error from fn stops the walk and is returned. The walk holds
// one of the Store's few connections, so fn should not start further walks
// of its own (writes from fn are fine: WAL lets them commit meanwhile).
func (s *Store) Objects(fn func(*hsm.ObjectRecord) error) error {
	return s.read("objects", func(ctx context.Context, c *sql.Conn, gen uint64) error {
		err := s.eachObject(ctx, c, fn, "SELECT "+objectColumns+" FROM objects ORDER BY id")
		if err == nil {
			s.mu.Lock()
			s.objectsSeen = gen
			s.mu.Unlock()
		}
		return err
	})
}

// Object returns one object, or (nil, nil) when there is none with that id.
func (s *Store) Object(id uint64) (*hsm.ObjectRecord, error) {
	if id > math.MaxInt64 {
		return nil, nil
	}
	var o *hsm.ObjectRecord
	err := s.eachObject(context.Background(), s.db, func(r *hsm.ObjectRecord) error { o = r; return nil },
		"SELECT "+objectColumns+" FROM objects WHERE id = ?", int64(id))
	return o, storageErr(s.path, "object", err)
}

// indexed returns the raw values of the attributes copied into columns.
func indexed(attrs []ck.Attribute) (class, label, id []byte) {
	for _, a := range attrs {
		v := a.Value
		if v == nil {
			v = []byte{} // present but empty is not NULL (absent)
		}
		switch a.Type {
		case ck.CKA_CLASS:
			class = v
		case ck.CKA_LABEL:
			label = v
		case ck.CKA_ID:
			id = v
		}
	}
	return
}

// Commit applies one change to the objects (hsm.Store), in one IMMEDIATE
// transaction: all of it or nothing. Every precondition is checked against
// the stored rows inside the transaction, under the write lock, before
// anything is written:
//
//   - Put with Gen 0 inserts a new object. Its id must be neither stored
//     nor tombstoned (deleted, by Delete or by Reinit, ever), so that a
//     destroyed object never comes back.
//   - Put with Gen g replaces the object only if it is stored at g.
//   - Delete {id, g} removes the object only if it is stored at g, and
//     tombstones the id.
//   - Require {id, g}: the object must be stored at g; nothing is written
//     for it.
//
// If any fails nothing is written and the error wraps hsm.ErrConflict, not
// CKR_DEVICE_ERROR: the engine catches up (ObjectsSince) and decides again.
// An id may be named once among Put and Delete; a change naming one twice,
// or a Put with id 0, is a caller's bug (CKR_GENERAL_ERROR). On success
// each Put record's Gen is the generation the transaction stamped, which
// is the version a later Commit must name. Other processes see the commit
// as any other (Changed, then ObjectsSince: rows by gen, deletions by
// tombstone). A change that writes nothing (Require only) checks its
// preconditions and commits nothing: the generation does not move.
//
// Durability (see durability): a change that inserts one new object and
// writes nothing else (a Require beside it writes nothing) is cached; one
// that replaces, deletes or writes several objects is fsynced. An insert
// of an id above the counter (not from NewObjectID: a bulk import) moves
// the counter past it, so that NewObjectID never hands it out.
func (s *Store) Commit(ch *hsm.Change) error {
	if ch == nil {
		return nil
	}
	type put struct {
		rec                 *hsm.ObjectRecord
		class, label, ckaID []byte
		attrs, sealed       []byte
		crc                 int64
	}
	if err := ch.Validate(); err != nil {
		return fmt.Errorf("token store %s: %w", s.path, err)
	}
	puts := make([]put, len(ch.Put))
	for i, o := range ch.Put {
		if o.ID > math.MaxInt64 {
			return fmt.Errorf("token store %s: commit: object id %d out of range: %w", s.path, o.ID, ck.CKR_GENERAL_ERROR)
		}
		p := put{rec: o, attrs: encodeAttrs(o.Attrs), sealed: o.Sealed}
		if p.sealed == nil {
			p.sealed = []byte{}
		}
		p.class, p.label, p.ckaID = indexed(o.Attrs)
		p.crc = objectCRC(o.ID, o.Private, p.attrs, p.sealed)
		puts[i] = p
	}
	if len(puts) == 0 && len(ch.Delete) == 0 && len(ch.Require) == 0 {
		return nil
	}
	var stamped uint64
	err := s.write("commit", changeDurability(ch), func(ctx context.Context, c *sql.Conn, gen uint64) error {
		st, err := c.PrepareContext(ctx, `SELECT (SELECT gen FROM objects WHERE id = ?1),
			EXISTS (SELECT 1 FROM tombstones WHERE id = ?1)`)
		if err != nil {
			return err
		}
		defer st.Close()
		state := func(id uint64) (stored bool, g uint64, tomb bool, err error) {
			if id == 0 || id > math.MaxInt64 {
				return false, 0, false, nil
			}
			var sg sql.NullInt64
			err = st.QueryRowContext(ctx, int64(id)).Scan(&sg, &tomb)
			return sg.Valid, uint64(sg.Int64), tomb, err
		}
		if err := ch.Check(state); err != nil {
			return err
		}
		if len(puts) == 0 && len(ch.Delete) == 0 {
			return errNoChange
		}

		if len(puts) > 0 {
			ins, err := c.PrepareContext(ctx, `INSERT INTO objects (id, gen, private, class, label, cka_id, attrs, sealed, crc, mac)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer ins.Close()
			var maxID int64
			for _, p := range puts {
				id := int64(p.rec.ID)
				mac := s.mac.object(p.rec.ID, gen, p.rec.Private, p.attrs, p.sealed)
				if p.rec.Gen == 0 {
					_, err = ins.ExecContext(ctx, id, int64(gen), p.rec.Private, p.class, p.label, p.ckaID, p.attrs, p.sealed, p.crc, mac)
					maxID = max(maxID, id)
				} else {
					_, err = c.ExecContext(ctx, `UPDATE objects SET gen = ?, private = ?, class = ?, label = ?, cka_id = ?,
						attrs = ?, sealed = ?, crc = ?, mac = ? WHERE id = ?`,
						int64(gen), p.rec.Private, p.class, p.label, p.ckaID, p.attrs, p.sealed, p.crc, mac, id)
				}
				if err != nil {
					return err
				}
			}
			if maxID > 0 {
				// An id the engine did not get from NewObjectID (an
				// import) must still never be handed out again.
				if _, err := c.ExecContext(ctx, "UPDATE meta SET next_id = ? WHERE next_id <= ?", maxID+1, maxID); err != nil {
					return err
				}
			}
		}
		for _, v := range ch.Delete {
			if _, err := c.ExecContext(ctx, "DELETE FROM objects WHERE id = ?", int64(v.ID)); err != nil {
				return err
			}
			if _, err := c.ExecContext(ctx, "INSERT OR REPLACE INTO tombstones (id, gen) VALUES (?, ?)", int64(v.ID), int64(gen)); err != nil {
				return err
			}
		}
		stamped = gen
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range puts {
		p.rec.Gen = stamped
	}
	return nil
}

// NewObjectID returns an id that no object of this token has had and that
// no other Store, in this process or another, will return. Ids come from a
// counter in the file, reserved idBlock at a time.
func (s *Store) NewObjectID() (uint64, error) {
	s.mu.Lock()
	if s.idNext < s.idEnd {
		id := s.idNext
		s.idNext++
		s.mu.Unlock()
		return id, nil
	}
	s.mu.Unlock()

	s.wmu.Lock()
	defer s.wmu.Unlock()
	ctx := context.Background()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return 0, storageErr(s.path, "new object id", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return 0, storageErr(s.path, "new object id", err)
	}
	var next int64
	err = c.QueryRowContext(ctx, "UPDATE meta SET next_id = next_id + ? RETURNING next_id - ?", idBlock, idBlock).Scan(&next)
	if err == nil {
		_, err = c.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		rollback(ctx, c)
		return 0, storageErr(s.path, "new object id", err)
	}
	// The reservation changes no object and no token field, so the
	// generation stays: nobody needs to reload for it.
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idNext, s.idEnd = uint64(next)+1, uint64(next)+idBlock
	return uint64(next), nil
}

// Generation returns the number of changes committed to the token so far,
// by any process. It is one read of one row.
func (s *Store) Generation() (uint64, error) {
	var gen int64
	err := s.db.QueryRow("SELECT generation FROM meta").Scan(&gen)
	return uint64(gen), storageErr(s.path, "generation", err)
}

// Changed reports whether someone else — another process or another Store
// on the same file — has committed a change since this Store last loaded
// the token record (LoadToken) or the objects (Objects, ObjectsSince).
// Changes made through this Store do not count: the engine already has
// them. It costs one indexed read of one row (a few microseconds) and takes
// no lock a writer waits for, so the engine can call it at the start of
// every C_ call that reads objects, and call ObjectsSince (and LoadToken
// when Delta.Token says so) when it returns true.
//
// With the shared change counter it is one atomic load when nothing was
// committed since it last answered false, so the engine asks it on every
// operation's init.
func (s *Store) Changed() (bool, error) {
	var c uint64
	if s.changes != nil {
		c = s.changes.load()
		if c%2 == 0 && s.verified.Load() == c+1 {
			return false, nil
		}
	}
	gen, err := s.Generation()
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	changed := gen > min(s.tokenSeen, s.objectsSeen)
	s.mu.Unlock()
	if s.changes != nil && !changed && c%2 == 0 {
		// c was read before the generation, so nothing committed after
		// c is taken as seen.
		s.verified.Store(c + 1)
	}
	return changed, nil
}

// Delta is the engine's type: what ObjectsSince found.
type Delta = hsm.Delta

// ObjectsSince brings a caller that has seen the token up to generation
// since to the current generation, from one snapshot: put is called for
// every object written after since and del for every id deleted after since
// (possibly ids the caller never saw). Its cost grows with the number of
// changes, not with the size of the token. since = 0 loads everything.
func (s *Store) ObjectsSince(since uint64, put func(*hsm.ObjectRecord) error, del func(id uint64) error) (Delta, error) {
	var d Delta
	err := s.read("objects since", func(ctx context.Context, c *sql.Conn, gen uint64) error {
		d = Delta{Generation: gen}
		var resetGen, tokenGen int64
		if err := c.QueryRowContext(ctx, "SELECT reset_gen, coalesce((SELECT gen FROM token), 0) FROM meta").Scan(&resetGen, &tokenGen); err != nil {
			return err
		}
		d.Token = uint64(tokenGen) > since
		if since > gen || since < uint64(resetGen) {
			d.Reset, d.Token = true, true
			since = 0
		}
		// Ordered by gen so that the gen index serves the query: the cost
		// is the number of changes, not the size of the token.
		q, args := "SELECT "+objectColumns+" FROM objects WHERE gen > ? ORDER BY gen, id", []any{int64(since)}
		if d.Reset {
			q, args = "SELECT "+objectColumns+" FROM objects ORDER BY id", nil
		}
		if err := s.eachObject(ctx, c, put, q, args...); err != nil {
			return err
		}
		if !d.Reset {
			rows, err := c.QueryContext(ctx, "SELECT id FROM tombstones WHERE gen > ? ORDER BY id", int64(since))
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				if err := del(uint64(id)); err != nil {
					return err
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		s.mu.Lock()
		s.objectsSeen = gen
		if !d.Token {
			// The caller's token record, current at since, still is.
			s.tokenSeen = gen
		}
		s.mu.Unlock()
		return nil
	})
	return d, err
}

// FindIDs returns, in id order, the ids of the objects whose CKA_CLASS,
// CKA_LABEL and CKA_ID equal those in tmpl, using an index instead of a
// scan. Only those three attribute types are looked at; the others in tmpl
// are ignored, so the caller applies the rest of a C_FindObjectsInit
// template (and CKA_PRIVATE visibility) to the candidates itself. A tmpl
// without any of the three matches every object. Every returned row was
// read and checksum-verified, so a damaged index cannot produce a wrong id.
func (s *Store) FindIDs(tmpl []ck.Attribute) ([]uint64, error) {
	class, label, ckaID := indexed(tmpl)
	var where []string
	var args []any
	// Without ANALYZE statistics SQLite may pick the class index for
	// class+label, which selects every key of the class; the unary + keeps
	// it to the selective label or id index when one applies.
	if class != nil {
		if label != nil || ckaID != nil {
			where = append(where, "+class = ?")
		} else {
			where = append(where, "class = ?")
		}
		args = append(args, class)
	}
	if label != nil {
		where = append(where, "label = ?")
		args = append(args, label)
	}
	if ckaID != nil {
		where = append(where, "cka_id = ?")
		args = append(args, ckaID)
	}
	q := "SELECT " + objectColumns + " FROM objects"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id"
	var ids []uint64
	err := s.eachObject(context.Background(), s.db, func(o *hsm.ObjectRecord) error {
		oc, ol, oi := indexed(o.Attrs)
		if (class == nil || bytes.Equal(class, oc) && oc != nil) &&
			(label == nil || bytes.Equal(label, ol) && ol != nil) &&
			(ckaID == nil || bytes.Equal(ckaID, oi) && oi != nil) {
			ids = append(ids, o.ID)
		}
		return nil
	}, q, args...)
	return ids, storageErr(s.path, "find", err)
}

var _ hsm.Store = (*Store)(nil)

// Count returns the number of stored objects (for listings; one indexed
// count, no object is read).
func (s *Store) Count() (int, error) {
	var n int
	err := s.db.QueryRow("SELECT count(*) FROM objects").Scan(&n)
	return n, storageErr(s.path, "count", err)
}
