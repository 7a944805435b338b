package tokens

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// storageErr gives a storage failure its PKCS#11 meaning while keeping the
// SQLite error for the log. A full disk is CKR_DEVICE_MEMORY (the token has
// no room left, PKCS#11 3.0 §5.1); everything else — a damaged file, an I/O
// error, a lock held past busy_timeout — is CKR_DEVICE_ERROR. An error that
// already carries an RV keeps it, and so does a version conflict
// (hsm.ErrConflict): that is no failure of the device, the engine catches
// up and decides again.
func storageErr(path, what string, err error) error {
	if err == nil {
		return nil
	}
	var rv ck.RV
	if errors.As(err, &rv) || errors.Is(err, hsm.ErrConflict) {
		return fmt.Errorf("token store %s: %s: %w", path, what, err)
	}
	code := ck.CKR_DEVICE_ERROR
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		code = ck.CKR_DEVICE_MEMORY
	}
	return fmt.Errorf("token store %s: %s: %w: %w", path, what, err, code)
}

// rollback ends a transaction that failed. If even ROLLBACK fails the
// connection's state is unknown, so it is thrown away rather than handed to
// the next caller with a transaction possibly still open.
func rollback(ctx context.Context, c *sql.Conn) {
	if _, err := c.ExecContext(ctx, "ROLLBACK"); err != nil {
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
	}
}
