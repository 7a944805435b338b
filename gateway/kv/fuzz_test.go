package kv

import (
	"bytes"
	"testing"
)

// FuzzDecode: a record read from a token (anyone with the user PIN can
// write data objects there) never panics the decoder, and what decodes
// encodes back to the same bytes (flags aside: committed comes from the
// label).
func FuzzDecode(f *testing.F) {
	r := record{version: 7, at: 42, value: []byte("value")}
	r.nonce[0] = 1
	f.Add(r.encode())
	f.Add([]byte("gkv1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := decode(1, b)
		if !ok {
			return
		}
		if r.flags&committed != 0 {
			t.Fatal("committed flag taken from the value")
		}
		again := r.encode()
		want := append([]byte{}, b...)
		want[4] &^= committed
		if !bytes.Equal(again, want) {
			t.Fatalf("round trip:\n%x\n%x", b, again)
		}
	})
}
