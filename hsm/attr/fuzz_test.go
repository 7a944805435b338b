package attr

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// FuzzDecodeTemplate: the nested-template decoder takes bytes from callers
// (the shim, the wire codec). It must never panic, and what it accepts must
// encode back to the same bytes.
func FuzzDecodeTemplate(f *testing.F) {
	f.Add(EncodeTemplate([]ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("x")}, {Type: ck.CKA_SIGN, Value: Bool(true)}}))
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Add(bytes.Repeat([]byte{0xff}, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		tmpl, err := DecodeTemplate(b)
		if err != nil {
			return
		}
		if got := EncodeTemplate(tmpl); !bytes.Equal(got, b) {
			t.Fatalf("round trip differs: %x -> %x", b, got)
		}
	})
}
