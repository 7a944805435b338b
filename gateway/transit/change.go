package transit

import "context"

// A request the gateway thought had no side effects (its audit request
// record only queued, not yet written) may change something after all:
// encrypt with a missing key creates it (Vault's upsert). The engine calls
// the hook its context carries before such a change, so that the record is
// in the audit log before the key exists (fail closed: an error from the
// hook refuses the change).
type beforeChangeKey struct{}

// WithBeforeChange returns ctx carrying fn, which the engine calls before
// a request it got through a read-only-looking route changes anything.
func WithBeforeChange(ctx context.Context, fn func() error) context.Context {
	return context.WithValue(ctx, beforeChangeKey{}, fn)
}

func beforeChange(ctx context.Context) error {
	if fn, ok := ctx.Value(beforeChangeKey{}).(func() error); ok && fn != nil {
		return fn()
	}
	return nil
}
