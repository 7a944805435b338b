package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ChainError names the first broken record of a log: Verify's and Open's
// error (with errors.As).
type ChainError struct {
	// Seq is the sequence number the bad line should hold (record n is on
	// line n in an intact log, so Seq == Line unless the log was cut).
	Seq uint64
	// Line is the 1-based line number of the first bad line.
	Line int
	// Torn reports that the only defect is a last line without its
	// newline: a write cut short by a crash or a full disk (a record that
	// was never acknowledged), or a file truncated mid-line.
	Torn bool
	// Reason says what is wrong.
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at record %d (line %d): %s", e.Seq, e.Line, e.Reason)
}

// Verify reads a whole log and checks every record: its form (ParseRecord),
// its sequence number (1 for the genesis record, then +1 per line), its link
// (prev is the previous record's hash) and its own hash (SHA-256, or
// HMAC-SHA256 under key for a keyed log; a keyed log needs its key and a
// plain one refuses a key, so a log cannot be downgraded). It returns the
// number of good records and, for the first bad one, a *ChainError naming
// it. A log cut at a line boundary verifies as a shorter log: compare its
// head with one kept elsewhere (Scan, Log.Head).
func Verify(r io.Reader, key []byte) (records int, err error) {
	return Scan(r, key, nil)
}

// Scan is Verify calling fn with each record once it is verified, in
// order; an error from fn stops the scan and is returned as it is.
func Scan(r io.Reader, key []byte, fn func(*Record) error) (records int, err error) {
	st, err := scan(r, key, fn)
	return st.records, err
}

// chainState is where a verified log ends.
type chainState struct {
	records int
	seq     uint64 // last good record
	head    string // its hash
	end     int64  // byte offset just after its line
	chain   string // the genesis record's chain id
}

// splitLines is bufio.ScanLines keeping the newline, so that a last line
// without one (torn) can be told from a whole one.
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func scan(r io.Reader, key []byte, fn func(*Record) error) (chainState, error) {
	st := chainState{head: zeroHash}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	sc.Split(splitLines)
	line := 0
	for sc.Scan() {
		line++
		want := st.seq + 1
		bad := func(torn bool, format string, a ...any) (chainState, error) {
			return st, &ChainError{Seq: want, Line: line, Torn: torn, Reason: fmt.Sprintf(format, a...)}
		}
		tok := sc.Bytes()
		if tok[len(tok)-1] != '\n' {
			return bad(true, "the last line has no newline: a torn write, or the file was cut mid-record")
		}
		rec, err := ParseRecord(tok[:len(tok)-1])
		if err != nil {
			return bad(false, "%v", err)
		}
		if rec.Seq != want {
			return bad(false, "the line holds record %d: record %d was deleted, or records were reordered or inserted", rec.Seq, want)
		}
		if line == 1 {
			if err := checkGenesis(rec, key); err != nil {
				return bad(false, "%v", err)
			}
			st.chain = rec.Chain
		} else if rec.Call == CallGenesis {
			return bad(false, "a second genesis record")
		}
		if rec.Prev != st.head {
			return bad(false, "prev is not the hash of record %d: a record was altered, deleted or inserted", st.seq)
		}
		if h := linkHash(key, rec.body(make([]byte, 0, len(tok)))); h != rec.Hash {
			why := "hash mismatch: the record was altered"
			if key != nil {
				why = "HMAC mismatch: the record was altered, or forged without the key"
			}
			return bad(false, "%s", why)
		}
		if fn != nil {
			if err := fn(rec); err != nil {
				return st, err
			}
		}
		st.records++
		st.seq, st.head = rec.Seq, rec.Hash
		st.end += int64(len(tok))
	}
	if err := sc.Err(); err != nil {
		line++
		if errors.Is(err, bufio.ErrTooLong) {
			return st, &ChainError{Seq: st.seq + 1, Line: line, Reason: fmt.Sprintf("a line longer than %d bytes", MaxLine)}
		}
		return st, fmt.Errorf("audit: reading line %d: %w", line, err)
	}
	if line == 0 {
		return st, &ChainError{Seq: 1, Line: 1, Reason: "the log is empty: no genesis record"}
	}
	return st, nil
}

// checkGenesis checks the first record: its kind, format and that the key
// (or its absence) is the log's.
func checkGenesis(r *Record, key []byte) error {
	if r.Call != CallGenesis {
		return fmt.Errorf("the first record is %q, not the genesis record", r.Call)
	}
	if r.Version != FormatVersion {
		return fmt.Errorf("format version %q; this program reads %q", r.Version, FormatVersion)
	}
	if len(r.Chain) != 32 {
		return errors.New("the genesis record has no chain id")
	}
	switch r.MAC {
	case MACSHA256:
		if key != nil {
			return errors.New("the log is not keyed (mac sha256) but a key was given: refusing a downgraded log")
		}
		if r.KeyID != "" {
			return errors.New("a plain log with a key id")
		}
	case MACHMAC:
		if key == nil {
			return fmt.Errorf("the log is keyed (hmac-sha256, key id %s): verify it with its key", r.KeyID)
		}
		if id := KeyID(key); r.KeyID != id {
			return fmt.Errorf("the log's key id is %s, the given key's is %s: the wrong key, or the record was altered", r.KeyID, id)
		}
	default:
		return fmt.Errorf("unknown mac %q", r.MAC)
	}
	return nil
}
