package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	gwaudit "github.com/gohsm/gohsm/gateway/audit"
)

// `gohsm audit verify FILE` on the crypto gateway's audit log
// (gateway/audit): recognised by its genesis record's format, verified
// whole (seq, prev and hash of every record), the first broken record
// named. The chain is plain SHA-256, so no key is needed; --key-file K
// also checks that the log was made under K (its key_id).

// isGatewayAuditLog reports whether f starts with a gateway genesis
// record, and rewinds it.
func isGatewayAuditLog(f *os.File) bool {
	defer f.Seek(0, io.SeekStart)
	line, err := bufio.NewReaderSize(f, 4096).ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) && len(line) == 0 {
		return false
	}
	return gwaudit.IsGatewayLog(line)
}

func verifyGatewayAudit(f *os.File, name string, key []byte, headSeq uint64, headHash string, stdout io.Writer) error {
	st, err := gwaudit.Verify(f)
	if err != nil {
		return fmt.Errorf("%s: %w (%d good records before it)", name, err, st.Records)
	}
	if key != nil && gwaudit.KeyID(key) != st.KeyID {
		return fmt.Errorf("%s: the chain is intact, but the log was made under another key (key id %s; --key-file's is %s)", name, st.KeyID, gwaudit.KeyID(key))
	}
	if headSeq != 0 {
		if headSeq > st.Records {
			return fmt.Errorf("%s: the chain is intact but ends at record %d, before the head %d kept elsewhere: the log was cut short or replaced", name, st.Records, headSeq)
		}
		f.Seek(0, io.SeekStart)
		h, err := gatewayRecordHash(f, headSeq)
		if err != nil {
			return err
		}
		if h != headHash {
			return fmt.Errorf("record %d has hash %s, not the head %s kept elsewhere: the log was rewritten or replaced", headSeq, h, headHash)
		}
	}
	fmt.Fprintf(stdout, "%d records ok (crypto gateway audit log)\nchain %s, key id %s, head %d %s\n", st.Records, st.ID, st.KeyID, st.Records, st.Head)
	return nil
}

// gatewayRecordHash is record seq's hash (its line's last 64 hex digits
// before `"}`), from a log Verify accepted.
func gatewayRecordHash(r io.Reader, seq uint64) (string, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	for n := uint64(1); ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return "", fmt.Errorf("record %d not found", seq)
		}
		if n == seq {
			l := len(line) - 1 // without \n
			return string(line[l-2-64 : l-2]), nil
		}
	}
}
