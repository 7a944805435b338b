package transit

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// badRequest and notFound build request-level errors. Messages name the
// field and the rule, never a value the caller sent that could be secret.
func badRequest(format string, a ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, a...)}
}

func notFound(name string) *Error {
	return &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("encryption key not found: %q", name)}
}

// inOp is a missing key met by an operation on it (encrypt, rotate, ...):
// Vault answers those 400 and only a read 404, and clients (hvac's
// InvalidRequest vs InvalidPath) tell them apart.
func inOp(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return &Error{Status: http.StatusBadRequest, Msg: e.Msg}
	}
	return err
}

// AsError is err as a *Error: itself, or a 500 that names the token's
// error code (never data). The HTTP layer calls it on any method error.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Msg: internalMsg(err)}
}

func internalMsg(err error) string {
	if rv := token.RV(err); rv != ck.CKR_GENERAL_ERROR {
		return fmt.Sprintf("token failure: %v", rv)
	}
	return "internal error: " + err.Error()
}

// tokenErr turns a token error met while running an item into the item's
// error: the caller's fault (a bad tag, a refused mechanism) is a 400 with
// msg. A device failure stays as it is, so the batch runner hands it to
// Exec.Do, which runs the items again on another token.
func tokenErr(err error, msg string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if retryable(err) {
		return err
	}
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("%s (%v)", msg, token.RV(err))}
}

// retryable says whether an item's token error should end its run of
// items and go back to Exec.Do, which may run them again: a device
// failure (on another token), or a stale handle (a key destroyed and
// remade under a cached handle; the pool looks it up again).
func retryable(err error) bool {
	if token.DeviceFailure(err) {
		return true
	}
	switch token.RV(err) {
	case ck.CKR_KEY_HANDLE_INVALID, ck.CKR_OBJECT_HANDLE_INVALID:
		var e *Error
		return !errors.As(err, &e)
	}
	return false
}
