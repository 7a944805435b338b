package tokens

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"sync"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Authenticated rows (schema 2). The clear attributes on disk decide what
// the engine lets a key do (CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_TRUSTED,
// CKA_WRAP_WITH_TRUSTED, the templates, the usage flags), and a CRC only
// catches accidents: an edit that recomputes it passes. So every object
// row and the token row also carry an HMAC-SHA256 under a random 32-byte
// key held in the file (mac_key), over a domain string and every field the
// store returns: for an object its id, gen, private flag, encoded clear
// attributes and sealed blob; for the token its gen and every field of the
// record. Each read verifies it (hmac.Equal) and a missing or wrong MAC is
// CKR_DEVICE_ERROR naming the row, as a failed CRC is; so a row is either
// one this code wrote, whole, or an error.
//
// The CRC stays beside the MAC and is checked first. It costs a tenth of
// the MAC and tells the two failures apart for whoever must repair the
// token: a bad CRC is damage (disk, copy), a good CRC with a bad MAC is a
// row changed by something other than gohsm.
//
// Limits, on purpose and written down: the key lives in the same file,
// so the MAC stops edits by anything that does not know this scheme
// (sqlite3, a script recomputing the CRC), not an attacker who reads the
// key and this source (the engine's AES-GCM seal under the token key,
// which binds the clear attributes of objects that have secrets, does not
// depend on the file). And a MAC per row cannot tell a whole older row
// (with its older MAC) or a deleted row put back from a copy of the file
// from the current one.

const (
	macKeySize = 32
	// The domains keep an object's MAC from ever verifying as a token's
	// (or as anything a later schema MACs) under the same key.
	objectMACDomain = "gohsm token store: object row v1"
	tokenMACDomain  = "gohsm token store: token row v1"
)

// macer computes row MACs under one key. Each HMAC state is reused through
// a pool: loading 100,000 objects would otherwise allocate one per row.
type macer struct {
	pool sync.Pool
}

func newMACer(key []byte) *macer {
	k := append([]byte(nil), key...)
	m := &macer{}
	m.pool.New = func() any { return &macWriter{h: hmac.New(sha256.New, k)} }
	return m
}

// macWriter feeds fields to an HMAC in the same unambiguous form as
// crcWriter: integers as 8 bytes big-endian, byte strings length-prefixed.
type macWriter struct {
	h   hash.Hash
	buf [8]byte
}

func (w *macWriter) u64(v uint64) {
	binary.BigEndian.PutUint64(w.buf[:], v)
	w.h.Write(w.buf[:])
}

func (w *macWriter) bytes(b []byte) {
	w.u64(uint64(len(b)))
	w.h.Write(b)
}

func (m *macer) sum(fn func(w *macWriter)) []byte {
	w := m.pool.Get().(*macWriter)
	w.h.Reset()
	fn(w)
	out := w.h.Sum(nil)
	m.pool.Put(w)
	return out
}

// object is the MAC of an object row.
func (m *macer) object(id, gen uint64, private bool, attrs, sealed []byte) []byte {
	return m.sum(func(w *macWriter) {
		w.bytes([]byte(objectMACDomain))
		w.u64(id)
		w.u64(gen)
		w.u64(b2u(private))
		w.bytes(attrs)
		w.bytes(sealed)
	})
}

// token is the MAC of the token row.
func (m *macer) token(gen uint64, r *hsm.TokenRecord) []byte {
	return m.sum(func(w *macWriter) {
		w.bytes([]byte(tokenMACDomain))
		w.u64(gen)
		tokenFields(w, r)
	})
}

// loadMACKey reads the file's MAC key.
func loadMACKey(ctx context.Context, db *sql.DB) (*macer, error) {
	var key []byte
	var crc int64
	err := db.QueryRowContext(ctx, "SELECT key, crc FROM mac_key").Scan(&key, &crc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("the MAC key is missing: %w", ck.CKR_DEVICE_ERROR)
	}
	if err != nil {
		return nil, err
	}
	if len(key) != macKeySize || int64(crc32.Checksum(key, castagnoli)) != crc {
		return nil, fmt.Errorf("the MAC key is damaged: %w", ck.CKR_DEVICE_ERROR)
	}
	return newMACer(key), nil
}

// addMACs is the Go half of migration 2: it makes the MAC key and MACs
// every row already in the file.
//
// Trust on upgrade: a schema-1 file has nothing but CRCs, so its rows are
// taken as they are (a row edited before the upgrade, CRC recomputed, gets
// a valid MAC here). A row whose CRC fails is left without a MAC, so it
// stays an error on every read instead of being laundered into a valid
// one. After this, the rows are authenticated.
func addMACs(ctx context.Context, c *sql.Conn) error {
	key := make([]byte, macKeySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, "INSERT INTO mac_key (k, key, crc) VALUES (1, ?, ?)",
		key, int64(crc32.Checksum(key, castagnoli))); err != nil {
		return err
	}
	m := newMACer(key)

	rec, gen, crc, _, err := readToken(ctx, c)
	if err != nil {
		return err
	}
	if rec != nil && tokenCRC(rec) == crc {
		if _, err := c.ExecContext(ctx, "UPDATE token SET mac = ?", m.token(gen, rec)); err != nil {
			return err
		}
	}

	// In batches, so that no row is updated while a query over the table
	// is still stepping (SQLite leaves that undefined).
	const batch = 1024
	type row struct {
		id  int64
		mac []byte
	}
	var after int64
	for {
		rows, err := c.QueryContext(ctx, "SELECT id, gen, private, attrs, sealed, crc FROM objects WHERE id > ? ORDER BY id LIMIT ?", after, batch)
		if err != nil {
			return err
		}
		var todo []row
		n := 0
		for rows.Next() {
			var (
				id, gen, crc  int64
				private       bool
				attrs, sealed []byte
			)
			if err := rows.Scan(&id, &gen, &private, &attrs, &sealed, &crc); err != nil {
				rows.Close()
				return err
			}
			n++
			after = id
			if objectCRC(uint64(id), private, attrs, sealed) == crc {
				todo = append(todo, row{id, m.object(uint64(id), uint64(gen), private, attrs, sealed)})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range todo {
			if _, err := c.ExecContext(ctx, "UPDATE objects SET mac = ? WHERE id = ?", r.mac, r.id); err != nil {
				return err
			}
		}
		if n < batch {
			return nil
		}
	}
}
