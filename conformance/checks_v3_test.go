package conformance

import (
	"bytes"
	"testing"
)

// The key wrap references the kw.* checks compare modules against must
// themselves match the RFCs' published examples.
func TestKeyWrapReferences(t *testing.T) {
	for _, c := range []struct {
		name          string
		kek, in, want string
		pad           bool
	}{
		{"RFC 3394 4.1", "000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff", "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5", false},
		{"RFC 5649 6 (20 bytes)", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a", true},
		{"RFC 5649 6 (7 bytes)", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f", true},
	} {
		var got []byte
		if c.pad {
			got = wrapRFC5649(unhex(c.kek), unhex(c.in))
		} else {
			got = wrapRFC3394(unhex(c.kek), rfc3394IV, unhex(c.in))
		}
		if !bytes.Equal(got, unhex(c.want)) {
			t.Errorf("%s: got %x, want %s", c.name, got, c.want)
		}
	}
}

// x963KDF is the ANSI X9.63 KDF of CKD_SHA256_KDF; the expected value was
// computed with python3-cryptography's X963KDF (SHA-256, 40 bytes, so the
// counter reaches 2).
func TestX963KDF(t *testing.T) {
	got := x963KDF([]byte("shared secret Z"), []byte("info"), 40)
	want := unhex("a8ed71b6bc8b74cd11112a7502d75f239fed1b264f3a5c4717c7ac92e7b2ac06595fc4548c17176e")
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}
