package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Chain is what Verify found in an intact log.
type Chain struct {
	Records uint64 // the last seq (= the number of records)
	Head    string // its hash
	ID      string // the genesis record's chain id
	KeyID   string // the audit key's id
	End     int64  // bytes of whole, good records
}

// BrokenError names the first bad record.
type BrokenError struct {
	Line   int    // 1-based line of the file
	Seq    uint64 // the seq it should have had
	Reason string
	Torn   bool // the last line has no newline (a write cut short) and all before is good
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("record %d (line %d) is broken: %s", e.Seq, e.Line, e.Reason)
}

// IsGatewayLog reports whether firstLine (a log's first line) is a gateway
// log's genesis record.
func IsGatewayLog(firstLine []byte) bool {
	return bytes.HasPrefix(firstLine, []byte(`{"seq":1,`)) && bytes.Contains(firstLine, []byte(`"format":"`+Format+`"`))
}

// header is the members Verify reads of every line.
type header struct {
	Seq    uint64 `json:"seq"`
	Type   string `json:"type"`
	Format string `json:"format"`
	Chain  string `json:"chain"`
	KeyID  string `json:"key_id"`
	Prev   string `json:"prev"`
	Hash   string `json:"hash"`
}

// Verify checks a whole gateway log: every line one JSON object, seq 1, 2,
// 3, ..., each prev the hash before, each hash the SHA-256 of its line
// without the hash member, the first record a genesis of this Format. It
// returns the chain's state and, for a broken log, a *BrokenError naming
// the first bad record (Chain then describes the good records before it).
func Verify(r io.Reader) (Chain, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var st Chain
	prev := zeroHash
	var off int64
	for line := 1; ; line++ {
		raw, err := readLine(br)
		if err == io.EOF && len(raw) == 0 {
			if st.Records == 0 {
				return st, &BrokenError{Line: 1, Seq: 1, Reason: "empty log: no genesis record"}
			}
			return st, nil
		}
		want := st.Records + 1
		if err != nil && err != io.EOF {
			return st, &BrokenError{Line: line, Seq: want, Reason: err.Error()}
		}
		if err == io.EOF { // no newline
			return st, &BrokenError{Line: line, Seq: want, Reason: "torn last line (no newline)", Torn: true}
		}
		content := raw[:len(raw)-1]
		if reason := checkLine(content, want, prev, &st); reason != "" {
			return st, &BrokenError{Line: line, Seq: want, Reason: reason}
		}
		var h header
		json.Unmarshal(content, &h) // checkLine parsed it already
		prev = h.Hash
		st.Records, st.Head = h.Seq, h.Hash
		off += int64(len(raw))
		st.End = off
	}
}

func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		frag, err := br.ReadSlice('\n')
		out = append(out, frag...)
		if len(out) > MaxLine {
			return out, fmt.Errorf("line longer than %d bytes", MaxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return out, err
	}
}

// checkLine returns why content (one line, no newline) is not record want
// after prev, or "".
func checkLine(content []byte, want uint64, prev string, st *Chain) string {
	var h header
	if err := json.Unmarshal(content, &h); err != nil {
		return "not a JSON object: " + err.Error()
	}
	if h.Seq != want {
		return fmt.Sprintf("seq %d, want %d (a record was removed, inserted or reordered)", h.Seq, want)
	}
	if h.Prev != prev {
		return fmt.Sprintf("prev %s is not the previous record's hash %s", short(h.Prev), short(prev))
	}
	// The hash member is the line's last: ,"hash":"<64 hex>"}
	const tailLen = len(`,"hash":""}`) + 64
	if len(content) < tailLen || !bytes.HasPrefix(content[len(content)-tailLen:], []byte(`,"hash":"`)) || !bytes.HasSuffix(content, []byte(`"}`)) {
		return "the hash is not the last member"
	}
	body := append(append([]byte(nil), content[:len(content)-tailLen]...), '}')
	sum := sha256.Sum256(body)
	got := hex.EncodeToString(sum[:])
	if string(content[len(content)-tailLen+9:len(content)-2]) != h.Hash || got != h.Hash {
		return fmt.Sprintf("hash %s does not match the record's content (%s): the record was changed", short(h.Hash), short(got))
	}
	if want == 1 {
		if h.Type != TypeGenesis || h.Format != Format {
			return fmt.Sprintf("the first record is not a %s genesis record", Format)
		}
		st.ID, st.KeyID = h.Chain, h.KeyID
	} else if h.Type == TypeGenesis {
		return "a second genesis record"
	}
	return ""
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// ErrNotGateway: the file is not a gateway audit log.
var ErrNotGateway = errors.New("not a gohsm gateway audit log")
