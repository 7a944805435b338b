package tokens

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"hash/crc32"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Edits with raw SQL that keep every CRC valid: each must fail closed on
// the MAC, as CKR_DEVICE_ERROR naming the row, and only that row.

// rawDB opens a closed token file with SQLite directly, as someone editing
// the file would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=rw"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func execOK(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n == 0 && !strings.HasPrefix(q, "DELETE") {
		t.Fatalf("%s: no row changed", q)
	}
}

// editedCopy copies the token file src into a fresh token directory, lets
// edit change it with SQL, and returns the directory.
func editedCopy(t *testing.T, src string, edit func(db *sql.DB)) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, "tokens", "000001.db")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, dst)
	edit(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return root
}

// openOne opens the single token of root.
func openOne(t *testing.T, root string) (*Store, error) {
	t.Helper()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	stores, err := d.Stores()
	if err != nil {
		return nil, err
	}
	return stores[0].(*Store), nil
}

// rowOf reads an object row as stored.
func rowOf(t *testing.T, db *sql.DB, id uint64) (private bool, attrs, sealed []byte) {
	t.Helper()
	if err := db.QueryRow("SELECT private, attrs, sealed FROM objects WHERE id = ?", int64(id)).Scan(&private, &attrs, &sealed); err != nil {
		t.Fatal(err)
	}
	return
}

// setRow rewrites an object row's content with a valid CRC.
func setRow(t *testing.T, db *sql.DB, id, newID uint64, private bool, attrs, sealed []byte) {
	t.Helper()
	execOK(t, db, "UPDATE objects SET id = ?, private = ?, attrs = ?, sealed = ?, crc = ? WHERE id = ?",
		int64(newID), private, attrs, sealed, objectCRC(newID, private, attrs, sealed), int64(id))
}

func wantDeviceError(t *testing.T, what string, err error, mention string) {
	t.Helper()
	if !errors.Is(err, ck.CKR_DEVICE_ERROR) {
		t.Fatalf("%s: %v; want CKR_DEVICE_ERROR", what, err)
	}
	if !strings.Contains(err.Error(), mention) {
		t.Fatalf("%s: %q does not say %q", what, err, mention)
	}
}

const victim = 7

func macToken(t *testing.T) string {
	src, _ := buildToken(t, 20, func(o *hsm.ObjectRecord) {
		o.Attrs = append(o.Attrs, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)},
			ck.Attribute{Type: ck.CKA_EXTRACTABLE, Value: attr.Bool(false)})
	})
	return src
}

func TestMACRowEdits(t *testing.T) {
	src := macToken(t)
	for _, tc := range []struct {
		name    string
		edit    func(t *testing.T, db *sql.DB)
		readID  uint64 // the id the row is found under afterwards
		mention string
	}{
		{"CKA_SENSITIVE and CKA_EXTRACTABLE flipped", func(t *testing.T, db *sql.DB) {
			private, raw, sealed := rowOf(t, db, victim)
			a, err := decodeAttrs(raw)
			if err != nil {
				t.Fatal(err)
			}
			for i := range a {
				switch a[i].Type {
				case ck.CKA_SENSITIVE:
					a[i].Value = attr.Bool(false)
				case ck.CKA_EXTRACTABLE:
					a[i].Value = attr.Bool(true)
				}
			}
			setRow(t, db, victim, victim, private, encodeAttrs(a), sealed)
		}, victim, "object 7 fails its MAC"},
		{"one byte of the attributes", func(t *testing.T, db *sql.DB) {
			private, raw, sealed := rowOf(t, db, victim)
			raw[len(raw)-1] ^= 1
			setRow(t, db, victim, victim, private, raw, sealed)
		}, victim, "object 7 fails its MAC"},
		{"one byte of the sealed blob", func(t *testing.T, db *sql.DB) {
			private, raw, sealed := rowOf(t, db, victim)
			sealed[3] ^= 0x80
			setRow(t, db, victim, victim, private, raw, sealed)
		}, victim, "object 7 fails its MAC"},
		{"the private flag", func(t *testing.T, db *sql.DB) {
			private, raw, sealed := rowOf(t, db, victim)
			setRow(t, db, victim, victim, !private, raw, sealed)
		}, victim, "object 7 fails its MAC"},
		{"the id (the row moved)", func(t *testing.T, db *sql.DB) {
			private, raw, sealed := rowOf(t, db, victim)
			setRow(t, db, victim, 9999, private, raw, sealed)
		}, 9999, "object 9999 fails its MAC"},
		{"the gen", func(t *testing.T, db *sql.DB) {
			execOK(t, db, "UPDATE objects SET gen = gen + 1 WHERE id = ?", victim)
		}, victim, "object 7 fails its MAC"},
		{"the MAC itself", func(t *testing.T, db *sql.DB) {
			execOK(t, db, "UPDATE objects SET mac = substr(mac, 1, 31) || CASE WHEN substr(mac, 32, 1) = x'00' THEN x'01' ELSE x'00' END WHERE id = ?", victim)
		}, victim, "object 7 fails its MAC"},
		{"another row's MAC", func(t *testing.T, db *sql.DB) {
			execOK(t, db, "UPDATE objects SET mac = (SELECT mac FROM objects WHERE id = 8) WHERE id = ?", victim)
		}, victim, "object 7 fails its MAC"},
		{"NULL MAC", func(t *testing.T, db *sql.DB) {
			execOK(t, db, "UPDATE objects SET mac = NULL WHERE id = ?", victim)
		}, victim, "object 7 has no MAC"},
		{"empty MAC", func(t *testing.T, db *sql.DB) {
			execOK(t, db, "UPDATE objects SET mac = x'' WHERE id = ?", victim)
		}, victim, "object 7 has no MAC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := editedCopy(t, src, func(db *sql.DB) { tc.edit(t, db) })
			s, err := openOne(t, root)
			if err != nil {
				t.Fatalf("open: %v", err) // quick_check passes: the file is sound, a row is not
			}
			if _, err := s.LoadToken(); err != nil {
				t.Fatalf("the token row was not touched: %v", err)
			}
			wantDeviceError(t, "Objects", s.Objects(func(*hsm.ObjectRecord) error { return nil }), tc.mention)
			_, err = s.Object(tc.readID)
			wantDeviceError(t, "Object", err, tc.mention)
			_, err = s.FindIDs(nil)
			wantDeviceError(t, "FindIDs", err, tc.mention)
			_, err = s.ObjectsSince(0, func(*hsm.ObjectRecord) error { return nil }, func(uint64) error { return nil })
			wantDeviceError(t, "ObjectsSince", err, tc.mention)
			wantDeviceError(t, "Check", s.Check(), tc.mention)
			// Only that row: the others read as written.
			if o, err := s.Object(victim + 1); err != nil || o == nil {
				t.Fatalf("Object(%d) beside the damaged row: %v, %v", victim+1, o, err)
			}
		})
	}
}

func TestMACTokenRowEdits(t *testing.T) {
	src := macToken(t)
	for _, tc := range []struct {
		name    string
		edit    func(t *testing.T, db *sql.DB)
		mention string
	}{
		// Giving a PIN guesser its tries back.
		{"PIN failure counters reset", func(t *testing.T, db *sql.DB) {
			r := testToken("corruptible")
			r.SOFailures, r.UserFailures = 0, 0
			execOK(t, db, "UPDATE token SET so_failures = 0, user_failures = 0, crc = ?", tokenCRC(r))
		}, "token record fails its MAC"},
		{"gen", func(t *testing.T, db *sql.DB) {
			execOK(t, db, "UPDATE token SET gen = gen + 1")
		}, "token record fails its MAC"},
		{"NULL MAC", func(t *testing.T, db *sql.DB) {
			execOK(t, db, "UPDATE token SET mac = NULL")
		}, "token record has no MAC"},
		{"empty MAC", func(t *testing.T, db *sql.DB) {
			execOK(t, db, "UPDATE token SET mac = x''")
		}, "token record has no MAC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := editedCopy(t, src, func(db *sql.DB) { tc.edit(t, db) })
			s, err := openOne(t, root)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			_, err = s.LoadToken()
			wantDeviceError(t, "LoadToken", err, tc.mention)
			_, err = s.UpdateToken(func(*hsm.TokenRecord) error { return nil })
			wantDeviceError(t, "UpdateToken", err, tc.mention)
			wantDeviceError(t, "Check", s.Check(), tc.mention)
		})
	}
}

func TestMACKeyEdits(t *testing.T) {
	src := macToken(t)
	other := make([]byte, macKeySize)
	rand.Read(other)
	// Another valid key (a row moved from another token file would meet
	// the same): the file opens, and no row verifies.
	root := editedCopy(t, src, func(db *sql.DB) {
		execOK(t, db, "UPDATE mac_key SET key = ?, crc = ?", other, int64(crc32.Checksum(other, castagnoli)))
	})
	s, err := openOne(t, root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.LoadToken()
	wantDeviceError(t, "LoadToken under another key", err, "token record fails its MAC")
	wantDeviceError(t, "Objects under another key", s.Objects(func(*hsm.ObjectRecord) error { return nil }), "object 1 fails its MAC")

	for name, edit := range map[string]string{
		"key damaged":   "UPDATE mac_key SET key = substr(key, 1, 31) || CASE WHEN substr(key, 32, 1) = x'00' THEN x'01' ELSE x'00' END", // the last byte always changes (a fixed x'00' left one key in 256 intact)
		"key truncated": "UPDATE mac_key SET key = substr(key, 1, 16)",
		"key missing":   "DELETE FROM mac_key",
	} {
		root := editedCopy(t, src, func(db *sql.DB) { execOK(t, db, edit) })
		_, err := openOne(t, root)
		want := "the MAC key is damaged"
		if name == "key missing" {
			want = "the MAC key is missing"
		}
		wantDeviceError(t, name, err, want)
	}
}

// Every file gets its own key, and a new token's rows are MAC'd from the
// first write.
func TestMACKeyPerFile(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, b := mustCreate(t, d), mustCreate(t, d)
	ka, kb := macKeyOf(t, a), macKeyOf(t, b)
	if len(ka) != macKeySize || bytes.Equal(ka, kb) {
		t.Fatalf("keys %x and %x", ka, kb)
	}
	if err := a.SaveToken(testToken("a")); err != nil {
		t.Fatal(err)
	}
	insert(t, a, testObject(1, "one", true))
	var nulls int
	if err := a.db.QueryRow("SELECT (SELECT count(*) FROM objects WHERE mac IS NULL OR length(mac) != 32) + (SELECT count(*) FROM token WHERE mac IS NULL OR length(mac) != 32)").Scan(&nulls); err != nil || nulls != 0 {
		t.Fatalf("%d rows without a MAC, %v", nulls, err)
	}
}

func macKeyOf(t *testing.T, s *Store) []byte {
	t.Helper()
	var k []byte
	if err := s.db.QueryRowContext(context.Background(), "SELECT key FROM mac_key").Scan(&k); err != nil {
		t.Fatal(err)
	}
	return k
}
