package main

import (
	"slices"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// A token that appears between an application's size query and its fill
// is seen at the next size query, not as CKR_BUFFER_TOO_SMALL in between.
func TestSlotListSizedOnce(t *testing.T) {
	forgetSizedSlots()
	t.Cleanup(forgetSizedSlots)
	engine := []ck.SlotID{0, 1}
	calls := 0
	get := func(bool) ([]ck.SlotID, error) { calls++; return slices.Clone(engine), nil }

	sized, _ := slotListFor(true, true, get)
	engine = append(engine, 2) // another process makes a token
	filled, _ := slotListFor(true, false, get)
	if !slices.Equal(sized, []ck.SlotID{0, 1}) || !slices.Equal(filled, sized) || calls != 1 {
		t.Fatalf("size query %v, fill %v after %d engine calls; want the sized list twice, one call", sized, filled, calls)
	}
	// The next size query sees the new token; a fill with no size query
	// before it asks the engine.
	if got, _ := slotListFor(true, true, get); !slices.Equal(got, engine) {
		t.Fatalf("next size query: %v", got)
	}
	slotListFor(true, false, get)
	engine = append(engine, 3)
	if got, _ := slotListFor(true, false, get); !slices.Equal(got, engine) {
		t.Fatalf("a fill without a size query before it: %v, want %v", got, engine)
	}
	// tokenPresent true and false are kept apart.
	slotListFor(false, true, get)
	engine = append(engine, 4)
	if got, _ := slotListFor(true, false, get); !slices.Equal(got, engine) {
		t.Fatalf("tokenPresent=true fill used the tokenPresent=false size query: %v", got)
	}
	if got, _ := slotListFor(false, false, get); len(got) != 4 {
		t.Fatalf("tokenPresent=false fill: %v, want the 4 sized", got)
	}
}
