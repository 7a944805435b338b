package main

import (
	"sync"
	"testing"
)

// TestGCFloorRespectsOperator: the floor is raised only when the process's
// operator left GOGC and GOMEMLIMIT alone.
func TestGCFloorRespectsOperator(t *testing.T) {
	defer func() { gcFloor, gcFloorOnce = nil, sync.Once{} }()
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, true},
		{map[string]string{"GOGC": "200"}, false},
		{map[string]string{"GOMEMLIMIT": "1GiB"}, false},
	} {
		gcFloor, gcFloorOnce = nil, sync.Once{}
		raiseGCFloor(func(k string) string { return c.env[k] })
		if got := len(gcFloor) == gcFloorSize; got != c.want {
			t.Errorf("env %v: floor raised %v, want %v", c.env, got, c.want)
		}
	}
}
