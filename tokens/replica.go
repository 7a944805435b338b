package tokens

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Hooks for replication (firmware-sim/cluster). A replicated token is
// written only by its cluster's state machine, which applies the same
// sequence of writes, in the same order, to every member's copy. Since
// every write transaction adds exactly one to the generation and stamps
// what it writes with it, the copies then agree row for row on versions
// (object gens, tombstone gens, the token row's gen), which is what makes
// Commit's compare-and-set mean the same thing on every member. The row
// MACs differ (each file has its own MAC key) and are computed locally.
//
// Nothing here sees a secret in the clear: records are as the engine
// sealed them.

// EncodeAttrs and DecodeAttrs are the store's compact attribute encoding
// (codec.go), for replication's log entries and snapshots. DecodeAttrs
// accepts any input and fails with CKR_DEVICE_ERROR on a malformed one.
func EncodeAttrs(attrs []ck.Attribute) []byte { return encodeAttrs(attrs) }

// DecodeAttrs is the inverse of EncodeAttrs.
func DecodeAttrs(b []byte) ([]ck.Attribute, error) { return decodeAttrs(b) }

// ReplicaState is the whole replicated content of one token: what a
// snapshot carries and what ReplaceState installs.
type ReplicaState struct {
	Generation uint64 // meta.generation
	NextID     uint64 // meta.next_id
	Token      *hsm.TokenRecord
	TokenGen   uint64 // the token row's version (0 without a record)
	Objects    []*hsm.ObjectRecord
	Tombstones []hsm.ObjectVersion // id and the generation that deleted it
}

// Slot is the token's slot number (its file name, NNNNNN.db), or 0 for a
// file that is not named as a token.
func (s *Store) Slot() int {
	stem, _ := strings.CutSuffix(filepath.Base(s.path), ".db")
	n, err := strconv.Atoi(stem)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// Slots lists the slot numbers of the tokens in d, in order.
func (d *Dir) Slots() ([]int, error) {
	_, nums, err := d.files()
	return nums, err
}

// NewStores implements hsm.GrowingStorage: the initialised tokens of the
// directory that d has not opened yet — another process (or another
// connection's engine of the appliance) made them since — in slot order,
// tracked for Close. A token file whose record is not written yet (made,
// not yet initialised: C_InitToken's first step) is left for a later
// call, as is every file d opened already (Stores, Create, OpenSlot,
// NewStores).
func (d *Dir) NewStores() ([]hsm.Store, error) {
	paths, nums, err := d.files()
	if err != nil {
		return nil, err
	}
	have := map[int]bool{}
	d.mu.Lock()
	for _, s := range d.stores {
		have[s.Slot()] = true
	}
	d.mu.Unlock()
	var out []*Store
	fail := func(err error) ([]hsm.Store, error) {
		for _, s := range out {
			s.Close()
		}
		return nil, err
	}
	for i, p := range paths {
		if have[nums[i]] {
			continue
		}
		s, err := openStore(p, false)
		if err != nil {
			return fail(err)
		}
		rec, err := s.LoadToken()
		if err != nil || rec == nil {
			s.Close()
			if err != nil {
				return fail(err)
			}
			continue
		}
		s.shareChanges()
		out = append(out, s)
	}
	res := make([]hsm.Store, len(out))
	for i, s := range out {
		d.track(s)
		res[i] = s
	}
	return res, nil
}

var _ hsm.GrowingStorage = (*Dir)(nil)

// OpenSlot opens the token in slot n (file NNNNNN.db), which must exist,
// with the shared change counter, and tracks it for Close.
func (d *Dir) OpenSlot(n int) (*Store, error) {
	if n <= 0 || n > 999999 {
		return nil, fmt.Errorf("token slot %d: out of range: %w", n, ck.CKR_GENERAL_ERROR)
	}
	s, err := openStore(filepath.Join(d.tokensDir(), fmt.Sprintf("%06d.db", n)), false)
	if err != nil {
		return nil, err
	}
	s.shareChanges()
	d.track(s)
	return s, nil
}

// LoadTokenVersion returns the token record, verified, with the version
// (row gen) SaveTokenIf must name; (nil, 0, nil) before the first write.
func (s *Store) LoadTokenVersion() (*hsm.TokenRecord, uint64, error) {
	var (
		rec *hsm.TokenRecord
		gen uint64
	)
	err := s.read("load token", func(ctx context.Context, c *sql.Conn, _ uint64) error {
		var err error
		rec, gen, err = s.loadToken(ctx, c)
		return err
	})
	return rec, gen, err
}

// SaveTokenIf replaces the token record only if the stored one is at
// version gen (0: there is none); otherwise it writes nothing and the
// error wraps hsm.ErrConflict. It is UpdateToken's compare-and-set for a
// caller that decided on a record it read earlier (a cluster member).
func (s *Store) SaveTokenIf(gen uint64, r *hsm.TokenRecord) error {
	return s.write("save token", fsynced, func(ctx context.Context, c *sql.Conn, newGen uint64) error {
		cur, curGen, err := s.loadToken(ctx, c)
		if err != nil {
			return err
		}
		if cur == nil {
			curGen = 0
		}
		if curGen != gen {
			return fmt.Errorf("token record is at version %d, not %d: %w", curGen, gen, hsm.ErrConflict)
		}
		return s.saveToken(ctx, c, newGen, r)
	})
}

// ReserveIDs reserves n object ids in the file and returns the first:
// [first, first+n) are never handed out again, by this or any Store. It
// does not move the generation (nothing a reader sees changes).
func (s *Store) ReserveIDs(n uint64) (uint64, error) {
	if n == 0 || n > 1<<20 {
		return 0, fmt.Errorf("reserve %d ids: %w", n, ck.CKR_GENERAL_ERROR)
	}
	var first int64
	err := s.writeRaw("reserve ids", func(ctx context.Context, c *sql.Conn) error {
		return c.QueryRowContext(ctx, "UPDATE meta SET next_id = next_id + ? RETURNING next_id - ?", int64(n), int64(n)).Scan(&first)
	})
	return uint64(first), err
}

// ExportState reads the token's whole replicated content from one
// snapshot, verifying every row's checksum and MAC.
func (s *Store) ExportState() (*ReplicaState, error) {
	st := &ReplicaState{}
	err := s.read("export", func(ctx context.Context, c *sql.Conn, gen uint64) error {
		st.Generation = gen
		var next int64
		if err := c.QueryRowContext(ctx, "SELECT next_id FROM meta").Scan(&next); err != nil {
			return err
		}
		st.NextID = uint64(next)
		rec, tg, err := s.loadToken(ctx, c)
		if err != nil {
			return err
		}
		st.Token, st.TokenGen = rec, tg
		if err := s.eachObject(ctx, c, func(o *hsm.ObjectRecord) error {
			st.Objects = append(st.Objects, o)
			return nil
		}, "SELECT "+objectColumns+" FROM objects ORDER BY id"); err != nil {
			return err
		}
		rows, err := c.QueryContext(ctx, "SELECT id, gen FROM tombstones ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, g int64
			if err := rows.Scan(&id, &g); err != nil {
				return err
			}
			st.Tombstones = append(st.Tombstones, hsm.ObjectVersion{ID: uint64(id), Gen: uint64(g)})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// ReplaceState makes the token hold exactly st, in one fsynced
// transaction: every object, tombstone and the token row are replaced, the
// generation and the id counter are set to st's, and every row gets a MAC
// under this file's key. reset_gen is set to the new generation, so every
// reader (Changed, then ObjectsSince) reloads everything: what it held may
// be gone. It is how a cluster member installs a snapshot.
func (s *Store) ReplaceState(st *ReplicaState) error {
	if st == nil || st.Generation > math.MaxInt64 || st.NextID > math.MaxInt64 || st.TokenGen > st.Generation {
		return fmt.Errorf("replace state: bad state: %w", ck.CKR_GENERAL_ERROR)
	}
	for _, o := range st.Objects {
		if o == nil || o.ID == 0 || o.ID > math.MaxInt64 || o.Gen == 0 || o.Gen > st.Generation || o.ID >= st.NextID {
			return fmt.Errorf("replace state: bad object: %w", ck.CKR_GENERAL_ERROR)
		}
	}
	for _, t := range st.Tombstones {
		if t.ID == 0 || t.ID > math.MaxInt64 || t.Gen > st.Generation {
			return fmt.Errorf("replace state: bad tombstone: %w", ck.CKR_GENERAL_ERROR)
		}
	}
	return s.writeRaw("replace state", func(ctx context.Context, c *sql.Conn) error {
		for _, q := range []string{"DELETE FROM objects", "DELETE FROM tombstones", "DELETE FROM token"} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		ins, err := c.PrepareContext(ctx, `INSERT INTO objects (id, gen, private, class, label, cka_id, attrs, sealed, crc, mac)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, o := range st.Objects {
			attrs, sealed := encodeAttrs(o.Attrs), o.Sealed
			if sealed == nil {
				sealed = []byte{}
			}
			class, label, ckaID := indexed(o.Attrs)
			if _, err := ins.ExecContext(ctx, int64(o.ID), int64(o.Gen), o.Private, class, label, ckaID, attrs, sealed,
				objectCRC(o.ID, o.Private, attrs, sealed), s.mac.object(o.ID, o.Gen, o.Private, attrs, sealed)); err != nil {
				return err
			}
		}
		for _, t := range st.Tombstones {
			if _, err := c.ExecContext(ctx, "INSERT OR REPLACE INTO tombstones (id, gen) VALUES (?, ?)", int64(t.ID), int64(t.Gen)); err != nil {
				return err
			}
		}
		if st.Token != nil {
			if err := s.saveToken(ctx, c, st.TokenGen, st.Token); err != nil {
				return err
			}
		}
		_, err = c.ExecContext(ctx, "UPDATE meta SET generation = ?, reset_gen = ?, next_id = ?",
			int64(st.Generation), int64(st.Generation), int64(max(st.NextID, 1)))
		return err
	})
}

// writeRaw runs fn in one fsynced IMMEDIATE transaction without touching
// the generation (fn does, if it must).
func (s *Store) writeRaw(what string, fn func(ctx context.Context, c *sql.Conn) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ctx := context.Background()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return storageErr(s.path, what, err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
		return storageErr(s.path, what, err)
	}
	defer c.ExecContext(ctx, "PRAGMA synchronous = NORMAL")
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return storageErr(s.path, what, err)
	}
	if s.changes != nil {
		s.changes.beginWrite()
		defer s.changes.endWrite()
	}
	err = fn(ctx, c)
	if err == nil {
		_, err = c.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		rollback(ctx, c)
		return storageErr(s.path, what, err)
	}
	return nil
}

// EncryptBackup and DecryptBackup are the token backup's encryption
// (backup.go: passphrase or recipient key, 64 KiB AES-256-GCM chunks) for
// other payloads: a cluster's backup (firmware-sim/cluster) is its
// snapshot in this envelope. DecryptBackup may have written part of the
// plaintext to w when it fails: the caller discards w then.
func EncryptBackup(w io.Writer, r io.Reader, key BackupKey) error { return encryptBackup(w, r, key) }

// DecryptBackup authenticates and decrypts what EncryptBackup wrote.
func DecryptBackup(w io.Writer, r io.Reader, key BackupKey) error { return decryptBackup(w, r, key) }
