package transit

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseVersioned: no input panics; what parses formats back to
// itself; an error never quotes the input.
func FuzzParseVersioned(f *testing.F) {
	for _, s := range []string{"vault:v1:AAAA", "vault:v12:YWJj", "vault:v0:x", "vault:v01:x", "vault:v1:", "vault:", "vault:vv:", "gohsm:v3:abc", "vault:v99999999999:x", "vault:v1:a:b"} {
		f.Add("vault:", s)
	}
	f.Fuzz(func(t *testing.T, prefix, s string) {
		v, payload, err := parseVersioned(prefix, s, "ciphertext")
		if err != nil {
			if err.Status != 400 {
				t.Fatalf("status %d", err.Status)
			}
			if len(s) > 12 && !strings.Contains(prefix, s) && strings.Contains(err.Msg, s) {
				t.Fatalf("error quotes the input: %q", err.Msg)
			}
			return
		}
		e := &Engine{prefix: prefix}
		if got := e.format(v, payload); got != s {
			t.Fatalf("format(parse(%q)) = %q", s, got)
		}
		if v < 1 || payload == "" {
			t.Fatalf("parsed v%d %q", v, payload)
		}
	})
}

// FuzzDecodeSig: signature payloads of every encoding never panic.
func FuzzDecodeSig(f *testing.F) {
	f.Add("MEUCIQD", false)
	f.Add("MAYCAQECAQE=", false) // SEQUENCE{1, 1}
	f.Add("AAAA", true)
	tab := typeTable(nil)
	f.Fuzz(func(t *testing.T, payload string, jws bool) {
		for _, name := range []string{"ecdsa-p256", "ecdsa-p521", "ed25519", "rsa-2048"} {
			kt := tab.types[name]
			o := &signOpts{jws: jws && kt.kind == kindECDSA}
			raw, ok, err := decodeSig(kt, o, payload)
			if ok && err == nil && kt.kind == kindECDSA && !o.jws && len(raw) != 2*coordSize[kindECDSA][name] {
				t.Fatalf("%s: raw signature of %d bytes", name, len(raw))
			}
		}
	})
}

// FuzzRequestJSON decodes any body into every request type (the lenient
// Int, Bool and Duration decoders included): errors, never panics, and a
// decoded request re-encodes.
func FuzzRequestJSON(f *testing.F) {
	for _, s := range []string{
		`{"plaintext":"eA==","context":"Yw==","key_version":"2","batch_input":[{"plaintext":"eQ==","reference":"r"}]}`,
		`{"type":"hmac","exportable":"true","key_size":64,"auto_rotate_period":"24h","derived":false}`,
		`{"min_decryption_version":2,"deletion_allowed":"1","auto_rotate_period":3600}`,
		`{"input":"eA==","hash_algorithm":"sha2-256","prehashed":true,"marshaling_algorithm":"jws"}`,
		`{"bytes":"32","format":"hex"}`, `{"bits":1e3}`, `{"key_version":-1}`, `{"auto_rotate_period":"7d"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&CreateKeyRequest{}, &ConfigKeyRequest{}, &TrimKeyRequest{}, &EncryptRequest{}, &DecryptRequest{},
			&RewrapRequest{}, &DataKeyRequest{}, &SignRequest{}, &VerifyRequest{}, &HMACRequest{}, &RandomRequest{}} {
			if json.Unmarshal(body, v) == nil {
				if _, err := json.Marshal(v); err != nil {
					t.Fatalf("%T: %v", v, err)
				}
			}
		}
	})
}
