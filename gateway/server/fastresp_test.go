package server

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gohsm/gohsm/gateway/transit"
)

// The hand-written response data (fastresp.go) against json.Marshal.

// hotResponses builds one value of every hot response type, single and
// batch, from the strings and numbers given.
func hotResponses(a, b, c string, n int, valid bool) []any {
	pa := a
	return []any{
		&transit.EncryptResponse{Ciphertext: a, KeyVersion: n},
		&transit.EncryptResponse{BatchResults: []transit.EncryptResult{{Ciphertext: a, KeyVersion: n, Reference: b}, {Error: c, Reference: b}, {}}},
		&transit.EncryptResponse{},
		&transit.DecryptResponse{Plaintext: &pa},
		&transit.DecryptResponse{},
		&transit.DecryptResponse{BatchResults: []transit.DecryptResult{{Plaintext: &pa, Reference: b}, {Error: c}, {}}},
		&transit.SignResponse{Signature: a, KeyVersion: n},
		&transit.SignResponse{BatchResults: []transit.SignResult{{Signature: a, KeyVersion: n, PublicKey: c, Reference: b}, {Error: c}}},
		&transit.VerifyResponse{Valid: valid},
		&transit.VerifyResponse{Valid: valid, BatchResults: []transit.VerifyResult{{Valid: valid, Reference: b}, {Error: c}}},
		&transit.HMACResponse{HMAC: a},
		&transit.HMACResponse{BatchResults: []transit.HMACResult{{HMAC: a, Reference: b}, {Error: c, Reference: a}}},
		&transit.RewrapResponse{Ciphertext: a, KeyVersion: -n},
	}
}

func diffData(t *testing.T, v any) {
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendData(nil, v)
	if !ok {
		t.Fatalf("%T: not a hot type", v)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%T:\nhand %s\njson %s", v, got, want)
	}
}

func TestFastDataDifferential(t *testing.T) {
	for _, s := range []struct{ a, b, c string }{
		{"vault:v1:AAAA", "ref", "an error"}, {"", "", ""}, {"<a&b>", "\"q\"\\", "\n\r\t\b\f\x00\x1f\x7f"},
		{"\u2028\u2029é", "\xff\xfe", "日本"}, {"a\xc3", "\xed\xa0\x80", "\U0001F600"},
	} {
		for _, v := range hotResponses(s.a, s.b, s.c, 3, true) {
			diffData(t, v)
		}
	}
	if _, ok := appendData(nil, &transit.ReadKeyResponse{}); ok {
		t.Fatal("a type without a hand encoder claimed")
	}
}

func FuzzFastDataDifferential(f *testing.F) {
	f.Add("vault:v1:AAAA", "ref", "err", 1, true)
	f.Add("<&>", "\u2028", "\xff", -7, false)
	f.Fuzz(func(t *testing.T, a, b, c string, n int, valid bool) {
		for _, v := range hotResponses(a, b, c, n, valid) {
			diffData(t, v)
		}
	})
}
