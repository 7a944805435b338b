package server

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// rotatingEngine is a mount's engine whose AutoRotate reports what it was
// told to.
type rotatingEngine struct {
	Engine
	calls   *int
	rotated []string
	err     error
}

func (e rotatingEngine) AutoRotate(context.Context) ([]string, error) {
	*e.calls++
	return e.rotated, e.err
}

// TestAutoRotateEveryMount: Server.AutoRotate asks every mount's engine,
// names what they rotated by mount, and reports a failing mount without
// skipping the others.
func TestAutoRotateEveryMount(t *testing.T) {
	calls := 0
	g := newGW(t, gwOpts{noAudit: true, configure: func(c *Config) {
		newEngine := c.NewEngine
		c.NewEngine = func(mount string) (Engine, error) {
			e, err := newEngine(mount)
			if err != nil {
				return nil, err
			}
			if mount == "broken/" {
				return rotatingEngine{e, &calls, nil, errors.New("token gone")}, nil
			}
			return rotatingEngine{e, &calls, []string{"k1", "k2"}, nil}, nil
		}
	}})
	if err := g.s.Mount("broken", "transit", ""); err != nil {
		t.Fatal(err)
	}
	rotated, err := g.s.AutoRotate(context.Background())
	slices.Sort(rotated)
	if calls != 2 || !slices.Equal(rotated, []string{"transit/k1", "transit/k2"}) {
		t.Fatalf("%d calls, rotated %v", calls, rotated)
	}
	if err == nil || err.Error() != "broken/: token gone" {
		t.Fatalf("error %v", err)
	}
}
