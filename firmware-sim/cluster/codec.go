package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/tokens"
)

// The raft log entry: one write to the replicated token store, as the
// engine asked it of its hsm.Store, with every record as the engine sealed
// it (secret attributes only inside Sealed, under the token key or the
// token's public-object key; token keys only wrapped under PIN-derived
// keys). Layout, all integers uvarint:
//
//	version (1) | op | slot | body
//
//	opCreateToken  (no body; slot 0) make a new empty token in the next slot
//	opReinit       token record      C_InitToken: replace the record, drop every object
//	opSaveToken    token record      replace the record
//	opSaveTokenIf  gen, token record replace it if the stored one is at gen
//	opCommit       change            hsm.Change, compare-and-set (tokens.Store.Commit)
//	opReserveIDs   n                 reserve n object ids
//	opRestore      snapshot (bytes)  a backup into a cluster without tokens (slot 0)
//
// A token record: label, serial (bytes), userPINSet (0/1), SO and user
// failures, the SO and user wrapped keys (kdf, salt, iterations, nonce,
// sealed), public key. A change: n puts (id, gen, private, attrs in the
// store's encoding, sealed), n deletes (id, gen), n requires (id, gen).
// Bytes are a uvarint length and the bytes. Trailing bytes are an error.

const entryVersion = 1

type op byte

const (
	opCreateToken op = iota + 1
	opReinit
	opSaveToken
	opSaveTokenIf
	opCommit
	opReserveIDs
	opRestore
)

func (o op) String() string {
	switch o {
	case opCreateToken:
		return "create-token"
	case opReinit:
		return "reinit"
	case opSaveToken:
		return "save-token"
	case opSaveTokenIf:
		return "save-token-if"
	case opCommit:
		return "commit"
	case opReserveIDs:
		return "reserve-ids"
	case opRestore:
		return "restore"
	}
	return fmt.Sprintf("op(%d)", byte(o))
}

// entry is one decoded log entry.
type entry struct {
	Op     op
	Slot   int
	Gen    uint64 // opSaveTokenIf
	N      uint64 // opReserveIDs
	Token  *hsm.TokenRecord
	Change *hsm.Change
	Snap   []byte // opRestore: a snapshot (encodeSnapshot)
}

// maxReserve bounds opReserveIDs.
const maxReserve = 1 << 16

type enc struct{ b []byte }

func (e *enc) u(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) bytes(b []byte) { e.u(uint64(len(b))); e.b = append(e.b, b...) }
func (e *enc) bool(v bool) {
	if v {
		e.u(1)
	} else {
		e.u(0)
	}
}
func (e *enc) int(v int) {
	if v < 0 {
		v = 0
	}
	e.u(uint64(v))
}

func (e *enc) wrapped(w hsm.WrappedKey) {
	e.bytes([]byte(w.KDF))
	e.bytes(w.Salt)
	e.int(w.Iterations)
	e.bytes(w.Nonce)
	e.bytes(w.Sealed)
}

func (e *enc) token(r *hsm.TokenRecord) {
	e.bytes([]byte(r.Label))
	e.bytes([]byte(r.Serial))
	e.bool(r.UserPINSet)
	e.int(r.SOFailures)
	e.int(r.UserFailures)
	e.wrapped(r.SOKey)
	e.wrapped(r.UserKey)
	e.bytes(r.PublicKey)
}

func (e *enc) object(o *hsm.ObjectRecord) {
	e.u(o.ID)
	e.u(o.Gen)
	e.bool(o.Private)
	e.bytes(tokens.EncodeAttrs(o.Attrs))
	e.bytes(o.Sealed)
}

func (e *enc) versions(vs []hsm.ObjectVersion) {
	e.u(uint64(len(vs)))
	for _, v := range vs {
		e.u(v.ID)
		e.u(v.Gen)
	}
}

func encodeEntry(x *entry) []byte {
	e := &enc{b: make([]byte, 0, 256)}
	e.u(entryVersion)
	e.u(uint64(x.Op))
	e.int(x.Slot)
	switch x.Op {
	case opReinit, opSaveToken:
		e.token(x.Token)
	case opSaveTokenIf:
		e.u(x.Gen)
		e.token(x.Token)
	case opCommit:
		e.u(uint64(len(x.Change.Put)))
		for _, o := range x.Change.Put {
			e.object(o)
		}
		e.versions(x.Change.Delete)
		e.versions(x.Change.Require)
	case opReserveIDs:
		e.u(x.N)
	case opRestore:
		e.bytes(x.Snap)
	}
	return e.b
}

var errMalformed = errors.New("cluster: malformed log entry")

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errMalformed
	}
	d.b = nil
}

func (d *dec) u() uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *dec) bytes() []byte {
	n := d.u()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]byte, n)
	copy(out, d.b[:n])
	d.b = d.b[n:]
	return out
}

func (d *dec) bool() bool {
	switch d.u() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *dec) int() int {
	v := d.u()
	if v > math.MaxInt32 {
		d.fail()
		return 0
	}
	return int(v)
}

// count reads a number of items each at least min bytes long, bounded by
// what is left, so that a forged count cannot make a huge allocation.
func (d *dec) count(min int) int {
	n := d.u()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *dec) wrapped() hsm.WrappedKey {
	return hsm.WrappedKey{KDF: string(d.bytes()), Salt: d.bytes(), Iterations: d.int(), Nonce: d.bytes(), Sealed: d.bytes()}
}

func (d *dec) token() *hsm.TokenRecord {
	r := &hsm.TokenRecord{Label: string(d.bytes()), Serial: string(d.bytes()), UserPINSet: d.bool(),
		SOFailures: d.int(), UserFailures: d.int()}
	r.SOKey = d.wrapped()
	r.UserKey = d.wrapped()
	r.PublicKey = d.bytes()
	return r
}

func (d *dec) object() *hsm.ObjectRecord {
	o := &hsm.ObjectRecord{ID: d.u(), Gen: d.u(), Private: d.bool()}
	attrs := d.bytes()
	o.Sealed = d.bytes()
	if d.err != nil {
		return o
	}
	a, err := tokens.DecodeAttrs(attrs)
	if err != nil {
		d.fail()
		return o
	}
	o.Attrs = a
	return o
}

func (d *dec) versions() []hsm.ObjectVersion {
	n := d.count(2)
	var vs []hsm.ObjectVersion
	for i := 0; i < n && d.err == nil; i++ {
		vs = append(vs, hsm.ObjectVersion{ID: d.u(), Gen: d.u()})
	}
	return vs
}

// decodeEntry parses one log entry. Any input either decodes to an entry
// that encodes back to the same bytes or fails with errMalformed.
func decodeEntry(b []byte) (*entry, error) {
	d := &dec{b: b}
	if d.u() != entryVersion {
		return nil, fmt.Errorf("%w: version", errMalformed)
	}
	x := &entry{Op: op(d.u())}
	slot := d.u()
	if slot > 999999 {
		d.fail()
	}
	x.Slot = int(slot)
	switch x.Op {
	case opCreateToken:
	case opReinit, opSaveToken:
		x.Token = d.token()
	case opSaveTokenIf:
		x.Gen = d.u()
		x.Token = d.token()
	case opCommit:
		ch := &hsm.Change{}
		n := d.count(5)
		for i := 0; i < n && d.err == nil; i++ {
			ch.Put = append(ch.Put, d.object())
		}
		ch.Delete = d.versions()
		ch.Require = d.versions()
		x.Change = ch
		for _, o := range ch.Put {
			if o.ID > math.MaxInt64 || o.Gen > math.MaxInt64 {
				d.fail()
			}
		}
		for _, v := range append(ch.Delete[:len(ch.Delete):len(ch.Delete)], ch.Require...) {
			if v.ID > math.MaxInt64 || v.Gen > math.MaxInt64 {
				d.fail()
			}
		}
		if d.err == nil {
			if err := ch.Validate(); err != nil {
				return nil, fmt.Errorf("%w: %v", errMalformed, err)
			}
		}
	case opReserveIDs:
		x.N = d.u()
		if x.N == 0 || x.N > maxReserve {
			d.fail()
		}
	case opRestore:
		x.Snap = d.bytes()
		if d.err == nil {
			if _, _, err := decodeSnapshot(x.Snap); err != nil {
				d.fail()
			}
		}
	default:
		return nil, fmt.Errorf("%w: unknown op %d", errMalformed, x.Op)
	}
	if x.Op != opCreateToken && x.Op != opRestore && x.Slot == 0 {
		d.fail()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return nil, d.err
	}
	return x, nil
}

// The snapshot: every token's whole replicated content (tokens.ReplicaState),
// sealed as the store keeps it.
//
//	magic "gohsm-raft-snap\x01" | applied | n tokens | per token: slot, generation,
//	next id, has token (0/1) [token record, token gen], n objects
//	(id, gen, private, attrs, sealed), n tombstones (id, gen)
const snapMagic = "gohsm-raft-snap\x01"

type slotState struct {
	Slot  int
	State *tokens.ReplicaState
}

func encodeSnapshot(applied uint64, states []slotState) []byte {
	e := &enc{b: []byte(snapMagic)}
	e.u(applied)
	e.u(uint64(len(states)))
	for _, s := range states {
		st := s.State
		e.int(s.Slot)
		e.u(st.Generation)
		e.u(st.NextID)
		e.bool(st.Token != nil)
		if st.Token != nil {
			e.token(st.Token)
			e.u(st.TokenGen)
		}
		e.u(uint64(len(st.Objects)))
		for _, o := range st.Objects {
			e.object(o)
		}
		e.versions(st.Tombstones)
	}
	return e.b
}

func decodeSnapshot(b []byte) (uint64, []slotState, error) {
	if len(b) < len(snapMagic) || string(b[:len(snapMagic)]) != snapMagic {
		return 0, nil, fmt.Errorf("cluster: snapshot: bad magic")
	}
	d := &dec{b: b[len(snapMagic):]}
	applied := d.u()
	n := d.count(6)
	var out []slotState
	last := 0
	for i := 0; i < n && d.err == nil; i++ {
		s := slotState{Slot: d.int(), State: &tokens.ReplicaState{}}
		st := s.State
		st.Generation, st.NextID = d.u(), d.u()
		if d.bool() {
			st.Token = d.token()
			st.TokenGen = d.u()
		}
		m := d.count(5)
		for j := 0; j < m && d.err == nil; j++ {
			st.Objects = append(st.Objects, d.object())
		}
		st.Tombstones = d.versions()
		if s.Slot <= last || s.Slot > 999999 {
			d.fail()
		}
		last = s.Slot
		out = append(out, s)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return 0, nil, fmt.Errorf("cluster: snapshot: %w", d.err)
	}
	return applied, out, nil
}
