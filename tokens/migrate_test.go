package tokens

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// A token file written by the schema-1 code: migration 1's SQL (released,
// so never edited) and the rows as that code wrote them, with the
// statements it used, CRCs and no MACs. objs[i] is stored at generation
// i+2 (the token record at 1); badCRC names an object whose stored CRC is
// wrong (damage from before the upgrade), 0 for none.
func schema1File(t *testing.T, objs []*hsm.ObjectRecord, tombstoned []uint64, badCRC uint64) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "tokens", "000001.db")
	if err := initFile(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	defer db.Close()
	// One transaction (the pool has one connection), as the old code's
	// migration and PutObjects were.
	if _, err := db.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	execOK(t, db, `CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (0)`)
	if _, err := db.Exec(migrations[0].sql); err != nil {
		t.Fatal(err)
	}
	execOK(t, db, `UPDATE schema_version SET version = 1`)
	r := testToken("old file")
	execOK(t, db, `INSERT OR REPLACE INTO token (k, gen, label, serial, user_pin_set, so_failures, user_failures,
		so_kdf, so_salt, so_iterations, so_nonce, so_sealed,
		user_kdf, user_salt, user_iterations, user_nonce, user_sealed, public_key, crc)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		1, r.Label, r.Serial, r.UserPINSet, r.SOFailures, r.UserFailures,
		r.SOKey.KDF, r.SOKey.Salt, r.SOKey.Iterations, r.SOKey.Nonce, r.SOKey.Sealed,
		r.UserKey.KDF, r.UserKey.Salt, r.UserKey.Iterations, r.UserKey.Nonce, r.UserKey.Sealed,
		r.PublicKey, tokenCRC(r))
	maxID := uint64(0)
	for i, o := range objs {
		a := encodeAttrs(o.Attrs)
		sealed := o.Sealed
		if sealed == nil {
			sealed = []byte{}
		}
		class, label, ckaID := indexed(o.Attrs)
		crc := objectCRC(o.ID, o.Private, a, sealed)
		if o.ID == badCRC {
			crc ^= 1
		}
		execOK(t, db, `INSERT OR REPLACE INTO objects (id, gen, private, class, label, cka_id, attrs, sealed, crc)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, int64(o.ID), i+2, o.Private, class, label, ckaID, a, sealed, crc)
		maxID = max(maxID, o.ID)
	}
	gen := len(objs) + 1
	for _, id := range tombstoned {
		gen++
		execOK(t, db, "INSERT OR REPLACE INTO tombstones (id, gen) VALUES (?, ?)", int64(id), gen)
		maxID = max(maxID, id)
	}
	execOK(t, db, "UPDATE meta SET generation = ?, next_id = ?", gen, int64(maxID+1))
	if _, err := db.Exec("COMMIT"); err != nil {
		t.Fatal(err)
	}
	return root
}

func schemaVersionOf(t *testing.T, s *Store) int {
	t.Helper()
	var v int
	if err := s.db.QueryRow("SELECT version FROM schema_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateSchema1(t *testing.T) {
	var objs []*hsm.ObjectRecord
	for i := uint64(1); i <= 2500; i++ { // more than one migration batch
		objs = append(objs, testObject(i, fmt.Sprint("old ", i), i%3 == 0))
	}
	objs[10].Sealed, objs[10].Attrs = nil, nil
	root := schema1File(t, objs, []uint64{5000, 5001}, 0)

	s, err := openOne(t, root)
	if err != nil {
		t.Fatalf("opening a schema-1 file: %v", err)
	}
	if v := schemaVersionOf(t, s); v != schemaVersion() || v != 2 {
		t.Fatalf("schema version %d after open", v)
	}
	rec, err := s.LoadToken()
	if err != nil || rec.Label != "old file" || rec.UserFailures != testToken("").UserFailures {
		t.Fatalf("LoadToken after migration = %+v, %v", rec, err)
	}
	got := loadAll(t, s)
	if len(got) != len(objs) {
		t.Fatalf("%d objects after migration, want %d", len(got), len(objs))
	}
	for i, o := range objs {
		g := got[o.ID]
		if g == nil || !objectsEqual(g, o) || g.Gen != uint64(i+2) {
			t.Fatalf("object %d after migration = %+v, want it at Gen %d", o.ID, g, i+2)
		}
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Changed(); err != nil || c {
		t.Fatalf("Changed after the migration and a load = %v, %v", c, err)
	}

	// The file works: replace at the version written by the old code,
	// delete, insert; ids tombstoned by the old code stay dead.
	o := relabel(got[7], "new code")
	commit(t, s, &hsm.Change{Put: []*hsm.ObjectRecord{o}})
	del(t, s, got[8])
	wantConflict(t, "insert of an id the old code deleted", s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{testObject(5000, "zombie", false)}}))
	id, err := s.NewObjectID()
	if err != nil || id <= 5001 {
		t.Fatalf("NewObjectID = %d, %v", id, err)
	}
	insert(t, s, testObject(id, "new", true))
	u := *rec
	u.UserFailures = 0
	if err := s.SaveToken(&u); err != nil {
		t.Fatal(err)
	}

	// Reopened (migration done once), everything verifies.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := openOne(t, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Check(); err != nil {
		t.Fatal(err)
	}
	after := loadAll(t, s2)
	if len(after) != len(objs) || after[7].Gen != o.Gen || after[8] != nil || after[id] == nil {
		t.Fatalf("after reopen: %d objects, object 7 at %d (want %d)", len(after), after[7].Gen, o.Gen)
	}
}

// Rows that were already damaged stay damaged: the migration does not
// give them a valid MAC.
func TestMigrateSchema1KeepsDamage(t *testing.T) {
	var objs []*hsm.ObjectRecord
	for i := uint64(1); i <= 10; i++ {
		objs = append(objs, testObject(i, fmt.Sprint("old ", i), false))
	}
	root := schema1File(t, objs, nil, 4)
	s, err := openOne(t, root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Object(4)
	wantDeviceError(t, "the damaged row", err, "object 4 fails its checksum")
	if o, err := s.Object(5); err != nil || o == nil {
		t.Fatalf("Object(5) = %v, %v", o, err)
	}
	var nulls int
	if err := s.db.QueryRow("SELECT count(*) FROM objects WHERE mac IS NULL").Scan(&nulls); err != nil || nulls != 1 {
		t.Fatalf("%d rows without a MAC, %v; want only the damaged one", nulls, err)
	}
}

// Several processes opening an old file at once: one migrates, all end up
// with the same key (each reads what the others write).
func TestMigrateSchema1Concurrent(t *testing.T) {
	root := schema1File(t, []*hsm.ObjectRecord{testObject(1, "one", false)}, nil, 0)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := Open(root)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(func() { d.Close() })
			ss, err := d.Stores()
			if err != nil {
				errs[i] = err
				return
			}
			stores[i] = ss[0].(*Store)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	for i, s := range stores {
		o := testObject(uint64(100+i), fmt.Sprint("from ", i), false)
		insert(t, s, o)
	}
	for i, s := range stores {
		if got := loadAll(t, s); len(got) != n+1 {
			t.Fatalf("store %d sees %d objects, want %d", i, len(got), n+1)
		}
	}
}

// A file of a newer schema is refused, as before.
func TestMigrateNewerSchemaRefused(t *testing.T) {
	src, _ := buildToken(t, 1, nil)
	root := editedCopy(t, src, func(db *sql.DB) { execOK(t, db, "UPDATE schema_version SET version = version + 1") })
	_, err := openOne(t, root)
	if !errors.Is(err, ck.CKR_DEVICE_ERROR) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}
