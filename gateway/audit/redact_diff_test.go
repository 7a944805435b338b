package audit

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// redactCases are bodies where a scanner could part from encoding/json:
// escapes, invalid UTF-8, duplicate and escaped names, plain members,
// nesting, numbers at the grammar's edges, and what comes after the object.
var redactCases = []string{
	`{}`, ` {} `, "\t{\n}\r\n", `{"a":"b"}`, `{"plaintext":"aGk=","context":"Y3R4"}`,
	`{"b":1,"a":2,"c":[1,"x",{"z":"y","type":"t"}]}`,
	`{"type":"aes256-gcm96","name":"k","nested":{"type":["a",{"x":"y"}]}}`,
	`{"policies":["a","b",{"c":"d"}],"policy":"path \"x\" {}"}`,
	`{"a":"x","a":"y"}`, `{"a":"x","b":1,"a":{"q":"r"}}`, `{"type":"x","type":{"k":"v"}}`,
	`{"a\u0062":"1","ab":"2"}`, `{"\u00e9":"é","é":"e"}`, `{"na\"me":"v"}`, `{"a\\b":1}`,
	`{"name":"\u2028\u2029 \u0000 \u007f \ud800 \udc00x \ud83d\ude00"}`,
	"{\"name\":\"raw \x7f and \xff\xfe bad \xe2\x80\xa8 sep\"}", "{\"x\":\"\xc3\"}",
	"{\"\xff\":\"v\",\"name\":\"\xf0\x9f\x98\x80\"}", `{"error":"a\/b\b\f\n\r\t"}`,
	`{"n":0,"m":-0,"f":1.5e+10,"g":-2E-3,"h":123456789012345678901234567890,"i":0.0}`,
	`{"t":true,"f":false,"z":null,"arr":[],"obj":{},"deep":[[[[{"a":[["b"]]}]]]]}`,
	`{"a":1}]`, `{"a":1}}`, `{"a":1} }]x`, `{"a":1} x`, `{"a":1}{}`, `{"a":1},`, `{"a":1} "x"`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`, `{"a":+1}`, `{"a":1,}`, `{,}`,
	`{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{"a":tru}`, `{"a":nul}`, `{"a":True}`,
	`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, "{\"a\":\"tab\there\"}", `{"a":"unterminated}`,
	`{"a":[1,2,]}`, `{"a":[,]}`, `{"a":[1 2]}`, `[1]`, `"s"`, `1`, `null`, ``, ` `, `{`, `}`,
	strings.Repeat(`{"a":`, 9999) + `1` + strings.Repeat(`}`, 9999),
	strings.Repeat(`{"a":`, 10001) + `1` + strings.Repeat(`}`, 10001),
	`{"a":` + strings.Repeat(`[`, 9999) + strings.Repeat(`]`, 9999) + `}`,
	`{"a":` + strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000) + `}`,
}

func checkRedact(t *testing.T, h *hasher, body []byte) {
	t.Helper()
	want, wantOK := h.redactJSONRef(body)
	got, gotOK := h.appendRedacted([]byte("prefix"), body)
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("%q: the destination's bytes were lost", body)
	}
	got = got[len("prefix"):]
	if gotOK != wantOK {
		t.Fatalf("%.200q: scanner ok=%v, encoding/json ok=%v", body, gotOK, wantOK)
	}
	if gotOK && !bytes.Equal(got, want) {
		t.Fatalf("%.200q:\n scanner  %.300s\n generic  %.300s", body, got, want)
	}
	if !gotOK && len(got) != 0 {
		t.Fatalf("%q: refused but wrote %q", body, got)
	}
}

func TestRedactMatchesGeneric(t *testing.T) {
	h := newHasher(testKey)
	for _, c := range redactCases {
		checkRedact(t, h, []byte(c))
	}
	for _, b := range benchBodies() {
		checkRedact(t, h, b)
	}
	// What it writes: secrets HMAC'd, plain members and numbers as written.
	got, ok := h.appendRedacted(nil, []byte(`{"type":"ecdsa-p256","plaintext":"c2VjcmV0","key_version":2,"batch_input":[{"input":"aGk=","reference":"r1"}]}`))
	if !ok || bytes.Contains(got, []byte("c2VjcmV0")) || bytes.Contains(got, []byte("aGk=")) || bytes.Contains(got, []byte(`"r1"`)) {
		t.Fatalf("secrets left in %s", got)
	}
	want := `{"batch_input":[{"input":"` + h.hash("aGk=") + `","reference":"` + h.hash("r1") + `"}],"key_version":2,"plaintext":"` + h.hash("c2VjcmV0") + `","type":"ecdsa-p256"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("invalid JSON")
	}
}

// TestRedactRandom: random bodies built from JSON-ish fragments, mutated
// byte by byte, against the generic redaction.
func TestRedactRandom(t *testing.T) {
	h := newHasher(testKey)
	rng := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := 0; i < n; i++ {
		b := []byte(randJSON(rng, 0))
		if rng.IntN(3) == 0 && len(b) > 0 {
			for k := rng.IntN(3) + 1; k > 0; k-- {
				const junk = "{}[]\",:\\ 0-.eE\x00\x7f\xff\xc3tnu"
				b[rng.IntN(len(b))] = junk[rng.IntN(len(junk))]
			}
		}
		checkRedact(t, h, b)
	}
}

func randJSON(rng *rand.Rand, depth int) string {
	names := []string{"plaintext", "type", "name", "policies", "a", "b", "a", "\\u0061", "é", "error", "batch_input", "k\\\"q"}
	strs := []string{"", "aGk=", "x\\ny", "\\ud800", "é", "\xff", "\\u2028", "\x7f", "vault:v1:abc", "\\/"}
	nums := []string{"0", "-1", "1.5", "1e9", "-0.0e-0", "12345678901234567890123"}
	if depth > 4 {
		return `"` + strs[rng.IntN(len(strs))] + `"`
	}
	switch rng.IntN(6) {
	case 0, 1:
		var sb strings.Builder
		sb.WriteString("{")
		for j := rng.IntN(5); j > 0; j-- {
			if sb.Len() > 1 {
				sb.WriteString(",")
			}
			sb.WriteString(`"` + names[rng.IntN(len(names))] + `"` + []string{":", " : ", ":\n"}[rng.IntN(3)] + randJSON(rng, depth+1))
		}
		sb.WriteString("}")
		return sb.String()
	case 2:
		var sb strings.Builder
		sb.WriteString("[")
		for j := rng.IntN(4); j > 0; j-- {
			if sb.Len() > 1 {
				sb.WriteString(",")
			}
			sb.WriteString(randJSON(rng, depth+1))
		}
		sb.WriteString("]")
		return sb.String()
	case 3:
		return nums[rng.IntN(len(nums))]
	case 4:
		return []string{"true", "false", "null"}[rng.IntN(3)]
	}
	return `"` + strs[rng.IntN(len(strs))] + `"`
}

func FuzzRedactDifferential(f *testing.F) {
	for _, c := range redactCases {
		if len(c) < 4096 {
			f.Add([]byte(c))
		}
	}
	h := newHasher(testKey)
	f.Fuzz(func(t *testing.T, body []byte) { checkRedact(t, h, body) })
}
