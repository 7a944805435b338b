package tokens

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The clear attributes of an object are one BLOB rather than a row per
// attribute: loading a token reads every object, and one row per object is
// ~20x fewer rows to step through the SQLite VM and scan through
// database/sql than one row per attribute (a key has 15-25 attributes).
// Nothing ever queries an attribute inside the blob except CKA_CLASS,
// CKA_LABEL and CKA_ID, which are copied into indexed columns.
//
// Layout: version byte, uvarint count, then per attribute uvarint type,
// uvarint length, value bytes.
const attrsVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeAttrs(attrs []ck.Attribute) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, a := range attrs {
		n += 2*binary.MaxVarintLen64 + len(a.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, attrsVersion)
	b = binary.AppendUvarint(b, uint64(len(attrs)))
	for _, a := range attrs {
		b = binary.AppendUvarint(b, uint64(a.Type))
		b = binary.AppendUvarint(b, uint64(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b
}

// decodeAttrs parses an attribute blob. The values share one copy of b, each
// capped at its own length so that an append by the engine reallocates
// instead of overwriting the next value.
func decodeAttrs(src []byte) ([]ck.Attribute, error) {
	if len(src) < 2 || src[0] != attrsVersion {
		return nil, fmt.Errorf("attribute blob: bad header: %w", ck.CKR_DEVICE_ERROR)
	}
	b := make([]byte, len(src)-1)
	copy(b, src[1:])
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("attribute blob: bad count: %w", ck.CKR_DEVICE_ERROR)
	}
	b = b[k:]
	attrs := make([]ck.Attribute, 0, count)
	for i := uint64(0); i < count; i++ {
		t, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("attribute blob: attribute %d: bad type: %w", i, ck.CKR_DEVICE_ERROR)
		}
		b = b[k:]
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, fmt.Errorf("attribute blob: attribute %d: bad length: %w", i, ck.CKR_DEVICE_ERROR)
		}
		b = b[k:]
		attrs = append(attrs, ck.Attribute{Type: ck.AttributeType(t), Value: b[:l:l]})
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("attribute blob: %d trailing bytes: %w", len(b), ck.CKR_DEVICE_ERROR)
	}
	return attrs, nil
}

// SQLite checks its b-tree structure but not the bytes of a value, so a
// flipped bit inside a clear attribute (CKA_LABEL, CKA_PRIVATE, a public
// modulus) would otherwise come back as wrong data. Every row carries a
// CRC-32C over all of its content and its key, checked on every read; the
// id is included so that a row whose content lands under another id is
// caught too. CRC-32C runs at several GB/s, so it costs nothing measurable.
// It detects accidents, not attackers: anyone able to write the file can
// recompute a CRC. Since schema 2 every row also carries a MAC (mac.go).

type crcWriter struct{ c uint32 }

func (w *crcWriter) u64(v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	w.c = crc32.Update(w.c, castagnoli, b[:])
}

func (w *crcWriter) bytes(b []byte) {
	w.u64(uint64(len(b)))
	w.c = crc32.Update(w.c, castagnoli, b)
}

func objectCRC(id uint64, private bool, attrs, sealed []byte) int64 {
	var w crcWriter
	w.u64(id)
	w.u64(b2u(private))
	w.bytes(attrs)
	w.bytes(sealed)
	return int64(w.c)
}

func tokenCRC(r *hsm.TokenRecord) int64 {
	var w crcWriter
	tokenFields(&w, r)
	return int64(w.c)
}

// fieldWriter takes the fields of a row in order, for a CRC or a MAC.
type fieldWriter interface {
	u64(uint64)
	bytes([]byte)
}

// tokenFields feeds every field of a token record to w.
func tokenFields(w fieldWriter, r *hsm.TokenRecord) {
	w.bytes([]byte(r.Label))
	w.bytes([]byte(r.Serial))
	w.u64(b2u(r.UserPINSet))
	w.u64(uint64(r.SOFailures))
	w.u64(uint64(r.UserFailures))
	for _, k := range []*hsm.WrappedKey{&r.SOKey, &r.UserKey} {
		w.bytes([]byte(k.KDF))
		w.bytes(k.Salt)
		w.u64(uint64(k.Iterations))
		w.bytes(k.Nonce)
		w.bytes(k.Sealed)
	}
	w.bytes(r.PublicKey)
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
