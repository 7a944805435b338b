package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testKey = bytes.Repeat([]byte("k3y!"), 8) // 32 bytes

// makeLog writes a log of a genesis record and n call records, closes it
// (an audit.close record) and returns its path and lines (with newlines).
func makeLog(t testing.TB, n int, key []byte) (string, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		slot := uint64(i)
		r := Record{Who: "CN=client \"1\"\n", Call: "C_InitToken", Phase: PhaseIntent, Slot: &slot, Label: "tok\x00én", Template: []string{}}
		if i%2 == 1 {
			r = Record{Who: "local", Call: "C_GenerateKey", Phase: PhaseResult, Ref: uint64(i), Mech: "CKM_AES_KEY_GEN", Created: []uint64{7}, RV: "CKR_OK"}
		}
		if _, err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, readLines(t, path)
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))[:bytes.Count(data, []byte("\n"))]
}

// wantBroken fails unless verifying data reports the record seq (on line
// seq) broken.
func wantBroken(t *testing.T, what string, data []byte, key []byte, seq uint64) *ChainError {
	t.Helper()
	n, err := Verify(bytes.NewReader(data), key)
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: got %d records, %v; want a ChainError at record %d", what, n, err, seq)
	}
	if ce.Seq != seq || ce.Line != int(seq) || n != int(seq)-1 {
		t.Fatalf("%s: %v (%d good records); want record %d on line %d", what, err, n, seq, seq)
	}
	return ce
}

func TestChainRoundTrip(t *testing.T) {
	for _, key := range [][]byte{nil, testKey} {
		path, lines := makeLog(t, 6, key)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var calls []string
		n, err := Scan(f, key, func(r *Record) error { calls = append(calls, r.Call); return nil })
		f.Close()
		if err != nil || n != 8 || len(lines) != 8 {
			t.Fatalf("key %v: %d records, %v", key != nil, n, err)
		}
		if calls[0] != CallGenesis || calls[7] != CallClose {
			t.Fatalf("calls %v", calls)
		}
		// The hash is over the line without its hash member, as documented.
		for _, line := range lines {
			s := strings.TrimSuffix(string(line), "\n")
			i := strings.LastIndex(s, `,"hash":"`)
			if got := linkHash(key, []byte(s[:i]+"}")); s[i+9:len(s)-2] != got {
				t.Fatalf("documented hash rule does not hold for %s", s)
			}
		}
		// Strings survive the round trip.
		r, err := ParseRecord(bytes.TrimSuffix(lines[1], []byte("\n")))
		if err != nil || r.Who != "CN=client \"1\"\n" || r.Label != "tok\x00én" || r.Template == nil || *r.Slot != 0 {
			t.Fatalf("%+v %v", r, err)
		}
	}
}

// TestTamperAnyByte: changing any byte of any record is reported at that
// record, for three kinds of change per byte.
func TestTamperAnyByte(t *testing.T) {
	for _, key := range [][]byte{nil, testKey} {
		_, lines := makeLog(t, 4, key)
		data := bytes.Join(lines, nil)
		start := 0
		for i, line := range lines {
			for j := range line {
				for _, mask := range []byte{0x01, 0x20, 0x80} {
					bad := bytes.Clone(data)
					bad[start+j] ^= mask
					wantBroken(t, "tampered byte", bad, key, uint64(i+1))
				}
			}
			start += len(line)
		}
	}
}

func TestDeleteReorderDuplicate(t *testing.T) {
	_, lines := makeLog(t, 5, testKey)
	n := len(lines)
	for k := 0; k < n-1; k++ { // deleting the last line is a cut: TestTruncate
		bad := bytes.Join(append(append([][]byte{}, lines[:k]...), lines[k+1:]...), nil)
		ce := wantBroken(t, "deleted record", bad, testKey, uint64(k+1))
		if k > 0 && !strings.Contains(ce.Reason, "deleted") {
			t.Fatalf("reason %q", ce.Reason)
		}
	}
	for k := 0; k < n-1; k++ {
		swapped := append([][]byte{}, lines...)
		swapped[k], swapped[k+1] = swapped[k+1], swapped[k]
		wantBroken(t, "reordered records", bytes.Join(swapped, nil), testKey, uint64(k+1))
	}
	for k := 0; k < n; k++ {
		dup := append(append(append([][]byte{}, lines[:k+1]...), lines[k]), lines[k+1:]...)
		wantBroken(t, "duplicated record", bytes.Join(dup, nil), testKey, uint64(k+2))
	}
}

// TestTruncate: a cut mid-line is reported at the cut record (as torn); a
// cut at a line boundary is a valid shorter log, which only a head kept
// elsewhere reveals.
func TestTruncate(t *testing.T) {
	_, lines := makeLog(t, 3, nil)
	data := bytes.Join(lines, nil)
	start := 0
	for i, line := range lines {
		for j := 1; j < len(line); j++ {
			ce := wantBroken(t, "cut mid-line", data[:start+j], nil, uint64(i+1))
			if !ce.Torn {
				t.Fatalf("cut at %d+%d not reported torn: %v", start, j, ce)
			}
		}
		start += len(line)
		n, err := Verify(bytes.NewReader(data[:start]), nil)
		if err != nil || n != i+1 {
			t.Fatalf("cut after line %d: %d, %v", i+1, n, err)
		}
	}
	if _, err := Verify(bytes.NewReader(nil), nil); err == nil {
		t.Fatal("an empty log verified")
	}
}

// TestForgedAppend: a record appended by someone without the key fails its
// HMAC; in a plain log a correctly hashed forgery passes (the threat model),
// but a replayed record does not.
func TestForgedAppend(t *testing.T) {
	for _, key := range [][]byte{nil, testKey} {
		_, lines := makeLog(t, 3, key)
		last, err := ParseRecord(bytes.TrimSuffix(lines[len(lines)-1], []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		forged := Record{Seq: last.Seq + 1, Time: last.Time, Who: "local", Call: "C_Login", Phase: PhaseResult, Ref: 1, RV: "CKR_OK", Prev: last.Hash}
		forged.Hash = linkHash(nil, forged.body(nil)) // the attacker's best: no key
		data := append(bytes.Join(lines, nil), forged.line()...)
		if key != nil {
			wantBroken(t, "forged record", data, key, last.Seq+1)
		} else if n, err := Verify(bytes.NewReader(data), nil); err != nil || n != len(lines)+1 {
			t.Fatalf("plain log: forged record: %d, %v", n, err)
		}
		replay := append(bytes.Join(lines, nil), lines[len(lines)-1]...)
		wantBroken(t, "replayed record", replay, key, last.Seq+1)
	}
}

// TestKeyMismatch: a keyed log needs its key, the wrong key is named as
// such, and a plain log refuses a key (no downgrade of a keyed log to a
// plain one that anyone can recompute).
func TestKeyMismatch(t *testing.T) {
	_, keyed := makeLog(t, 2, testKey)
	_, plain := makeLog(t, 2, nil)
	wrong := bytes.Repeat([]byte{9}, 32)
	for _, c := range []struct {
		lines [][]byte
		key   []byte
		want  string
	}{
		{keyed, nil, "verify it with its key"},
		{keyed, wrong, "the wrong key"},
		{plain, testKey, "not keyed"},
	} {
		ce := wantBroken(t, c.want, bytes.Join(c.lines, nil), c.key, 1)
		if !strings.Contains(ce.Reason, c.want) {
			t.Fatalf("reason %q, want %q", ce.Reason, c.want)
		}
	}
}

// TestParseRecordCanonical: only the writer's encoding parses.
func TestParseRecordCanonical(t *testing.T) {
	_, lines := makeLog(t, 2, nil)
	good := string(bytes.TrimSuffix(lines[2], []byte("\n")))
	if _, err := ParseRecord([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		strings.Replace(good, `{"seq":`, `{ "seq":`, 1),                 // white space
		strings.Replace(good, `"seq":3`, `"seq":3,"seq":3`, 1),          // duplicate
		strings.Replace(good, `"seq":3`, `"SEQ":3`, 1),                  // case
		strings.Replace(good, `"seq":3`, `"seq":3.0`, 1),                // number form
		strings.Replace(good, `"who":"local"`, `"who":"loc\u0061l"`, 1), // escape
		strings.Replace(good, `"call"`, `"x":1,"call"`, 1),              // unknown
		strings.Replace(good, `,"mech":"CKM_AES_KEY_GEN"`, `,"mech":null`, 1),
		good + " ",
		good + "{}",
		"",
		"null",
	} {
		if _, err := ParseRecord([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// FuzzParseRecord fuzzes the record parser Verify uses, and Verify on the
// input as a whole file: no panic, and whatever parses re-encodes to the
// same bytes.
func FuzzParseRecord(f *testing.F) {
	_, lines := makeLog(f, 4, nil)
	for _, l := range lines {
		f.Add(bytes.TrimSuffix(l, []byte("\n")))
	}
	f.Add(bytes.Join(lines, nil))
	f.Add([]byte(`{"seq":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ParseRecord(data); err == nil {
			if got := r.line(); !bytes.Equal(got[:len(got)-1], data) {
				t.Fatalf("parsed %q, re-encodes as %q", data, got)
			}
		}
		Verify(bytes.NewReader(data), nil)
		Verify(bytes.NewReader(data), testKey)
	})
}

func TestKeyID(t *testing.T) {
	if KeyID(testKey) == KeyID(bytes.Repeat([]byte{1}, 32)) || len(KeyID(testKey)) != 16 {
		t.Fatal("key ids")
	}
}
