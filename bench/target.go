package bench

import (
	"errors"
	"fmt"
)

// worker is one thread's binding of an op: do is what gets timed; check
// runs the op once and proves its result right (untimed, before timing).
type worker struct {
	do    func() error
	check func() error
	close func()
}

// target is something ops run on: a PKCS#11 module or the raw Go libraries.
type target interface {
	targetName() string
	// prepare readies what op needs (keys, objects) once per run; a
	// *SkipError says the target cannot run op at all.
	prepare(op *Op) error
	// newWorker binds op for one worker (a module opens a session).
	newWorker(op *Op, idx int) (*worker, error)
	close()
}

// SkipError marks an op a target does not offer (a mechanism it does not
// list, an op with no raw equivalent); it is reported, not failed.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

func skipf(format string, args ...any) error {
	return &SkipError{Reason: fmt.Sprintf(format, args...)}
}

func isSkip(err error) (string, bool) {
	var s *SkipError
	if errors.As(err, &s) {
		return s.Reason, true
	}
	return "", false
}
