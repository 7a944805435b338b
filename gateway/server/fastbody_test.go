package server

import (
	"reflect"
	"testing"

	"github.com/gohsm/gohsm/gateway/transit"
)

// The fast body decoder against encoding/json (fastbody.go): for any body,
// decodeBody (fast path first) gives exactly the struct and the error the
// encoding/json path alone gives, and the bodies the benchmark and the
// clients send take the fast path.

var fastSeeds = []string{
	`{"plaintext":"aGk="}`, `{"plaintext":"aGk=","context":"Y3R4","key_version":"2","reference":"r"}`,
	`{"batch_input":[{"plaintext":"aGk=","reference":"a"},{"plaintext":"aGk=","key_version":3}]}`,
	`{"batch_input":[]}`, `{"batch_input":[],"batch_input":[]}`, `{"batch_input":[{}]}`, `{"batch_input":null}`,
	`{"ciphertext":"vault:v1:AAAA","context":""}`, `{"Plaintext":"aGk="}`, `{"plaintext":"a\u00e9"}`,
	`{"input":"aGk=","signature":"vault:v1:MEUC","hash_algorithm":"sha2-512","prehashed":"true"}`,
	`{"input":"aGk=","prehashed":true,"marshaling_algorithm":"jws","salt_length":"auto","key_version":1e0}`,
	`{"input":"aGk=","hmac":"vault:v1:x","algorithm":"sha2-256"}`, `{"plaintext":"x","plaintext":"y"}`,
	`{"key_version":01}`, `{"key_version":-0}`, `{"key_version":"x"}`, `{"key_version":1.5}`, `{"key_version":2.0}`,
	`{"partial_failure_response_code":207,"type":"aes128-gcm96","convergent_encryption":false}`,
	"{\"plaintext\":\"\xff\"}", "{\"plaintext\":\"é\"}", `{"plaintext":"x"} `, `{"plaintext":"x"}}`, `{"plaintext":"x"`,
	`{"plaintext":5}`, `{"plaintext":null}`, `{"plaintext":"x",}`, `{,}`, `{"batch_input":[{"plaintext":"x"},]}`,
	`{"key_version":1x}`, `{"key_version":true}`, `{"prehashed":1}`, `{"prehashed":"maybe"}`, ` {"input" : "a" } `,
}

func diffDecode[T any](t *testing.T, body []byte) {
	var fast, slow T
	errFast := decodeBody(body, &fast)
	errSlow := decodeBodyWith(body, &slow, false)
	if (errFast == nil) != (errSlow == nil) || errFast != nil && errFast.Error() != errSlow.Error() {
		t.Fatalf("%T %q: error %v, encoding/json %v", fast, body, errFast, errSlow)
	}
	if errFast == nil && !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%T %q:\nfast %+v\njson %+v", fast, body, fast, slow)
	}
}

func FuzzFastBodyDifferential(f *testing.F) {
	for _, s := range append(fastSeeds, seedBodies...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		diffDecode[transit.EncryptRequest](t, body)
		diffDecode[transit.DecryptRequest](t, body)
		diffDecode[transit.SignRequest](t, body)
		diffDecode[transit.VerifyRequest](t, body)
		diffDecode[transit.HMACRequest](t, body)
	})
}

// TestFastBodyTaken: the bodies clients send are decoded by the fast path
// (a fast path that gave up on everything would pass the differential
// test and save nothing).
func TestFastBodyTaken(t *testing.T) {
	for _, c := range []struct {
		body string
		v    any
	}{
		{`{"plaintext":"aGk=","context":"Y3R4","key_version":2,"reference":"r"}`, new(transit.EncryptRequest)},
		{`{"batch_input":[{"plaintext":"aGk="},{"plaintext":"aGk=","reference":"b"}],"partial_failure_response_code":207}`, new(transit.EncryptRequest)},
		{`{"ciphertext":"vault:v1:AAAA","associated_data":"YQ=="}`, new(transit.DecryptRequest)},
		{`{"batch_input":[{"ciphertext":"vault:v1:AAAA"}]}`, new(transit.DecryptRequest)},
		{`{"input":"aGk=","hash_algorithm":"sha2-256","prehashed":"true","marshaling_algorithm":"asn1"}`, new(transit.SignRequest)},
		{`{"batch_input":[{"input":"aGk="}],"key_version":"1"}`, new(transit.SignRequest)},
		{`{"input":"aGk=","signature":"vault:v1:MEUC"}`, new(transit.VerifyRequest)},
		{`{"batch_input":[{"input":"aGk=","hmac":"vault:v1:x"}]}`, new(transit.VerifyRequest)},
		{`{"input":"aGk=","algorithm":"sha2-512"}`, new(transit.HMACRequest)},
		{`{"batch_input":[{"input":"aGk=","reference":"x"}]}`, new(transit.HMACRequest)},
	} {
		if !fastDecode([]byte(c.body), c.v) {
			t.Errorf("%T %s: not taken by the fast path", c.v, c.body)
		}
	}
	for _, s := range fastSeeds {
		diffDecode[transit.EncryptRequest](t, []byte(s))
		diffDecode[transit.DecryptRequest](t, []byte(s))
		diffDecode[transit.SignRequest](t, []byte(s))
		diffDecode[transit.VerifyRequest](t, []byte(s))
		diffDecode[transit.HMACRequest](t, []byte(s))
	}
}
