package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

func TestPadInto(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"abc", "abc     "},
		{"", "        "},
		{"abcdefgh", "abcdefgh"},
		{"abcdefghij", "abcdefgh"},
		{"abcdefgé", "abcdefg "}, // é is two bytes: not split
		{"abcdef€", "abcdef  "},  // € is three bytes
	} {
		dst := make([]byte, 8)
		padInto(dst, c.in)
		if string(dst) != c.want {
			t.Errorf("padInto(%q) = %q, want %q", c.in, dst, c.want)
		}
	}
}

func TestLabelOf(t *testing.T) {
	for in, want := range map[string]string{
		"token   ":       "token",
		"a b\x00garbage": "a b",
		"        ":       "",
		"full-width":     "full-width",
	} {
		if got := labelOf([]byte(in)); got != want {
			t.Errorf("labelOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClampCap(t *testing.T) {
	if clampCap(16) != 16 || clampCap(^uint64(0)) != maxIn || clampCap(1<<31) != maxIn {
		t.Fatal("capOf must clamp, never wrap to -1")
	}
}

func TestSettle(t *testing.T) {
	small := fmt.Errorf("wrapped: %w", ck.CKR_BUFFER_TOO_SMALL)
	for i, c := range []struct {
		cap   int
		data  []byte
		need  int
		err   error
		wantN int
		rv    ck.RV
	}{
		{-1, nil, 32, nil, 32, ck.CKR_OK},                     // size query
		{64, make([]byte, 20), 20, nil, 20, ck.CKR_OK},        // result
		{8, nil, 20, small, 20, ck.CKR_BUFFER_TOO_SMALL},      // too small keeps need
		{8, make([]byte, 9), 9, nil, 0, ck.CKR_GENERAL_ERROR}, // backend overflow
		{8, nil, 0, ck.CKR_KEY_HANDLE_INVALID, 0, ck.CKR_KEY_HANDLE_INVALID},
		{8, nil, 0, errors.New("disk on fire"), 0, ck.CKR_GENERAL_ERROR},
		{-1, nil, -1, nil, 0, ck.CKR_GENERAL_ERROR},
	} {
		n, rv := settle(c.cap, c.data, c.need, c.err)
		if n != c.wantN || rv != c.rv {
			t.Errorf("%d: settle = %d, %v; want %d, %v", i, n, rv, c.wantN, c.rv)
		}
	}
}

func TestTemplateEncoding(t *testing.T) {
	in := []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("k")}, {Type: ck.CKA_TOKEN, Value: []byte{1}}, {Type: ck.CKA_ID, Value: []byte{}}}
	enc := encodeTemplate(in)
	if len(enc) != 3*16+2 {
		t.Fatalf("encoded length %d", len(enc))
	}
	out, err := decodeTemplate(enc)
	if err != nil || len(out) != 3 || out[0].Type != ck.CKA_LABEL || string(out[0].Value) != "k" || out[2].Type != ck.CKA_ID || len(out[2].Value) != 0 {
		t.Fatalf("round trip: %v %v", out, err)
	}
	if _, err := decodeTemplate(enc[:len(enc)-1]); err == nil {
		t.Error("truncated value accepted")
	}
	if _, err := decodeTemplate(enc[:10]); err == nil {
		t.Error("truncated header accepted")
	}
}
