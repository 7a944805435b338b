package tokens

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// FuzzDecodeAttrs: attribute blobs come off the disk, which may be damaged;
// the decoder must answer an error, never panic, and round-trip what it
// accepts.
func FuzzDecodeAttrs(f *testing.F) {
	f.Add(encodeAttrs([]ck.Attribute{{Type: ck.CKA_CLASS, Value: []byte{4, 0, 0, 0, 0, 0, 0, 0}}, {Type: ck.CKA_LABEL, Value: []byte("k")}}))
	f.Add([]byte{attrsVersion, 0})
	f.Add([]byte{attrsVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		attrs, err := decodeAttrs(b)
		if err != nil {
			return
		}
		if got := encodeAttrs(attrs); !bytes.Equal(got, b) {
			// Varints have one canonical form each; a non-canonical blob may
			// decode, but then it must still decode to the same attributes.
			again, err := decodeAttrs(got)
			if err != nil || len(again) != len(attrs) {
				t.Fatalf("re-encoded blob does not decode alike: %v", err)
			}
		}
	})
}
