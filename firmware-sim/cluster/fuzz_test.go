package cluster

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/tokens"
)

// FuzzDecodeEntry: any bytes decode to an entry or fail; what decodes
// re-encodes to bytes that decode to the same encoding (a fixed point).
func FuzzDecodeEntry(f *testing.F) {
	for _, x := range sampleEntries() {
		f.Add(encodeEntry(x))
	}
	f.Add([]byte{1, 5, 1, 200, 200, 200, 200, 200})
	f.Add(encodeEntry(&entry{Op: opRestore, Snap: encodeSnapshot(3, []slotState{{Slot: 1, State: &tokens.ReplicaState{NextID: 2}}})}))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := decodeEntry(b)
		if err != nil {
			return
		}
		e := encodeEntry(x)
		y, err := decodeEntry(e)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !bytes.Equal(encodeEntry(y), e) {
			t.Fatal("encoding is not a fixed point")
		}
	})
}

// FuzzDecodeSnapshot: the same for snapshots.
func FuzzDecodeSnapshot(f *testing.F) {
	e := sampleEntries()
	f.Add(encodeSnapshot(7, []slotState{{Slot: 1, State: &tokens.ReplicaState{Generation: 4, NextID: 9, Token: e[1].Token, TokenGen: 2,
		Objects: e[4].Change.Put, Tombstones: e[4].Change.Delete}}, {Slot: 3, State: &tokens.ReplicaState{NextID: 1}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		applied, states, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		enc := encodeSnapshot(applied, states)
		a2, s2, err := decodeSnapshot(enc)
		if err != nil || a2 != applied {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if !bytes.Equal(encodeSnapshot(a2, s2), enc) {
			t.Fatal("encoding is not a fixed point")
		}
	})
}
