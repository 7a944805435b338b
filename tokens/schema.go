package tokens

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// migration takes a database from one schema version to the next: sql,
// then (when set) then, in the same transaction. then is for what SQL
// cannot do well (a key from crypto/rand, a MAC per row).
type migration struct {
	sql  string
	then func(ctx context.Context, c *sql.Conn) error
}

// migrations[i] takes a database from schema version i to i+1. Entries are
// append-only: a released migration is never edited, so that every token
// file, whatever version wrote it, reaches the same schema. (Reinit no
// longer clears the tombstones, as the comment in migration 1 says: it
// turns the objects it removes into tombstones too, so that no id of a
// destroyed object is ever stored again; see Store.Commit.)
var migrations = []migration{
	// 1: the first schema.
	{sql: `
CREATE TABLE meta (
	k          INTEGER PRIMARY KEY CHECK (k = 1),
	-- generation counts committed changes to the token or its objects;
	-- every write transaction adds one (see Store.Changed).
	generation INTEGER NOT NULL,
	-- reset_gen is the generation of the last Reinit: a reader that saw
	-- an older generation must reload everything.
	reset_gen  INTEGER NOT NULL,
	-- next_id is the smallest object id never handed out.
	next_id    INTEGER NOT NULL
);
INSERT INTO meta (k, generation, reset_gen, next_id) VALUES (1, 0, 0, 1);

CREATE TABLE token (
	k              INTEGER PRIMARY KEY CHECK (k = 1),
	gen            INTEGER NOT NULL,
	label          TEXT NOT NULL,
	serial         TEXT NOT NULL,
	user_pin_set   INTEGER NOT NULL,
	so_failures    INTEGER NOT NULL,
	user_failures  INTEGER NOT NULL,
	so_kdf         TEXT NOT NULL,
	so_salt        BLOB NOT NULL,
	so_iterations  INTEGER NOT NULL,
	so_nonce       BLOB NOT NULL,
	so_sealed      BLOB NOT NULL,
	user_kdf       TEXT NOT NULL,
	user_salt      BLOB NOT NULL,
	user_iterations INTEGER NOT NULL,
	user_nonce     BLOB NOT NULL,
	user_sealed    BLOB NOT NULL,
	public_key     BLOB NOT NULL,
	crc            INTEGER NOT NULL
);

CREATE TABLE objects (
	id      INTEGER PRIMARY KEY,
	gen     INTEGER NOT NULL,
	private INTEGER NOT NULL,
	-- copies of the raw CKA_CLASS, CKA_LABEL and CKA_ID values (NULL when
	-- absent) so that C_FindObjects on them is an index lookup.
	class   BLOB,
	label   BLOB,
	cka_id  BLOB,
	attrs   BLOB NOT NULL,
	sealed  BLOB NOT NULL,
	crc     INTEGER NOT NULL
);
CREATE INDEX objects_class ON objects (class);
CREATE INDEX objects_label ON objects (label);
CREATE INDEX objects_cka_id ON objects (cka_id);
CREATE INDEX objects_gen ON objects (gen);

-- tombstones remember deletions so that another process can catch up
-- incrementally (Store.ObjectsSince); Reinit clears them.
CREATE TABLE tombstones (
	id  INTEGER PRIMARY KEY,
	gen INTEGER NOT NULL
);
CREATE INDEX tombstones_gen ON tombstones (gen);
`},

	// 2: authenticated rows. Every object row and the token row carry an
	// HMAC-SHA256 (mac) under a random key kept in mac_key, so that the
	// clear attributes (CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_TRUSTED, the
	// templates, usage flags) cannot be edited in the file by recomputing
	// the CRC (see mac.go). The columns are nullable because SQLite adds a
	// NOT NULL column only with a default; a NULL or empty mac fails every
	// read, so a row without one is never trusted.
	{sql: `
CREATE TABLE mac_key (
	k   INTEGER PRIMARY KEY CHECK (k = 1),
	-- 32 random bytes, generated once, when the file gets this schema;
	-- never changed (other processes hold it).
	key BLOB NOT NULL,
	-- CRC-32C of key, so that a damaged key is reported as such rather
	-- than as every row failing its MAC.
	crc INTEGER NOT NULL
);
ALTER TABLE objects ADD COLUMN mac BLOB;
ALTER TABLE token ADD COLUMN mac BLOB;
`, then: addMACs},
}

// schemaVersion is the version this code writes and understands.
func schemaVersion() int { return len(migrations) }

// migrate brings the database to the current schema in one IMMEDIATE
// transaction, so that two processes opening a new file at once cannot both
// create the tables. create is false for files found on disk: those must
// already hold a schema, since a token file that lost it is damaged, not new.
func migrate(ctx context.Context, db *sql.DB, create bool) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	err = migrateLocked(ctx, c, create)
	if err == nil {
		_, err = c.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		rollback(ctx, c)
	}
	return err
}

func migrateLocked(ctx context.Context, c *sql.Conn, create bool) error {
	var n int
	if err := c.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'`).Scan(&n); err != nil {
		return err
	}
	version := 0
	if n == 0 {
		if !create {
			return fmt.Errorf("not a gohsm token database (no schema_version table): %w", ck.CKR_DEVICE_ERROR)
		}
		if _, err := c.ExecContext(ctx, `CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (0)`); err != nil {
			return err
		}
	} else if err := c.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("schema_version is empty: %w", ck.CKR_DEVICE_ERROR)
		}
		return err
	}
	if version > schemaVersion() {
		return fmt.Errorf("schema version %d is newer than this gohsm (%d): %w", version, schemaVersion(), ck.CKR_DEVICE_ERROR)
	}
	for ; version < schemaVersion(); version++ {
		m := migrations[version]
		if _, err := c.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration to schema %d: %w", version+1, err)
		}
		if m.then != nil {
			if err := m.then(ctx, c); err != nil {
				return fmt.Errorf("migration to schema %d: %w", version+1, err)
			}
		}
		if _, err := c.ExecContext(ctx, `UPDATE schema_version SET version = ?`, version+1); err != nil {
			return err
		}
	}
	return nil
}
