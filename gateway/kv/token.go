package kv

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// AppPrefix is the CKA_APPLICATION of the gateway's data objects, before
// the namespace.
const AppPrefix = "gohsm-gateway/"

// Lease bounds how long a write may take from its read to its commit.
// A writer that has not committed within Lease/4 of its read gives up and
// starts again; a tentative record older than Lease is abandoned (its
// writer died) and anyone may destroy it; a tombstone older than Lease
// may be destroyed. Clocks of the gateways sharing a token must agree to
// within Lease/2 (NTP does far better).
const Lease = 60 * time.Second

// OnToken is a Swapper kept on tok as private token data objects
// (CKO_DATA, CKA_TOKEN and CKA_PRIVATE true, CKA_APPLICATION
// AppPrefix+ns, CKA_LABEL the key, CKA_VALUE a record: header and value).
// Every gateway that opens the same token with the same ns sees the same
// entries; the gateway itself keeps nothing.
//
// PKCS#11 has no transactions and no conditional write, so writes run an
// optimistic protocol over objects that C_CreateObject makes atomically:
//
//  1. read the key's records; the current one is the committed record of
//     the highest version (ties, which the protocol avoids, go to the
//     smallest nonce, so every reader agrees);
//  2. check the condition (CompareAndSwap's old value; Put and Delete
//     have none) and create a *tentative* record at version+1 with a
//     random nonce, labelled key+"\x00pending" (a key has no NUL, so no
//     reader's search finds it);
//  3. read the records again, tentative ones first and then committed
//     ones (so a record that is committed between the two searches is
//     seen by one of them): if any other live record has a version at or
//     above ours, a writer overlapped us, so destroy ours and go back to
//     1 (both may back off; a jittered wait breaks the tie); likewise if
//     the record we read is gone with nothing newer in its place (a
//     reaped tombstone whose key was made again from version 1);
//  4. otherwise commit: create the committed copy of our record (label
//     the key), then destroy the tentative one and the older records.
//
// Records are created and destroyed, never modified: SoftHSMv2 refuses
// to modify a data object's CKA_VALUE, and a search running while an
// object is rewritten may miss it there (measured: relabelling as the
// commit lost an update in about one run in ten of TestOnSoftHSM).
//
// Writer A commits only if, after A's record existed, A saw no other
// record at its version; any writer B whose record appears later sees A's
// (the tentative record is destroyed only after the committed copy
// exists, so one of them is always there) and backs off. So commits of one key are totally ordered by version and
// a CompareAndSwap never overwrites a value it did not compare (Put and
// Delete are the same protocol without the condition: last writer wins,
// per key). Readers never see a tentative record, so no dirty reads.
//
// The limits, honestly: safety rests on (a) the token's object search
// showing every object created before the search began, which holds for
// gohsm's store (a change counter shared by processes), on an appliance
// within one token, and for SoftHSMv2's file store in one process only
// because p11mod keeps its searches from overlapping its writes (SoftHSMv2
// can miss an object created by another thread during a search: a lost
// update in about one TestOnSoftHSM run in seven before p11mod did so; two
// processes on one SoftHSMv2 token are not tested); (b) a writer that
// stalls longer than Lease/4 between read and commit giving up (it checks
// its clock before committing, but the commit call itself must not take
// Lease/4) and clocks agreeing within Lease/2, because abandoned tentative
// records and old tombstones are reaped by age; (c) one token: the
// protocol orders writers on one token, it does not replicate entries
// between tokens (a pool keeps its store on one token, or on an appliance
// whose raft log replicates it). Progress is not guaranteed under endless
// contention (writers may keep backing off); after maxAttempts a write
// fails with ErrContended. A writer that dies after step 2 leaves a
// tentative record that blocks that key's writers until it is Lease old.
func OnToken(t token.Token, ns string) (Store, error) {
	if ns == "" || strings.ContainsRune(ns, 0) {
		return nil, errors.New("kv: empty namespace")
	}
	s := &tokenStore{t: t, app: []byte(AppPrefix + ns), now: time.Now, attempts: maxAttempts}
	sess, err := s.session()
	if err != nil {
		return nil, err
	}
	s.done(sess, nil)
	return s, nil
}

// ErrContended is a write that backed off maxAttempts times.
var ErrContended = errors.New("kv: write contended, gave up")

const maxAttempts = 64

type tokenStore struct {
	t   token.Token
	app []byte
	now func() time.Time
	// attempts bounds a write's rounds (maxAttempts; tests lower it).
	attempts int

	mu   sync.Mutex
	free []token.Session
}

// session takes an idle session or opens one: each goroutine uses its
// own, as PKCS#11 requires for a search.
func (s *tokenStore) session() (token.Session, error) {
	s.mu.Lock()
	if n := len(s.free); n > 0 {
		sess := s.free[n-1]
		s.free = s.free[:n-1]
		s.mu.Unlock()
		return sess, nil
	}
	s.mu.Unlock()
	sess, err := s.t.OpenSession()
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	return sess, nil
}

// done returns the session, unless the call failed because of the token
// (the session may be gone).
func (s *tokenStore) done(sess token.Session, err error) {
	if err != nil && token.DeviceFailure(err) {
		sess.Close()
		return
	}
	s.mu.Lock()
	if len(s.free) < 16 {
		s.free = append(s.free, sess)
		sess = nil
	}
	s.mu.Unlock()
	if sess != nil {
		sess.Close()
	}
}

// Record layout in CKA_VALUE: magic, flags, version, time (the writer's
// clock, Unix ns), nonce, value. The flags stored are tombstone's; the
// committed flag is the label's (see pendingSuffix), set when read.
const (
	magic     = "gkv1"
	hdrLen    = len(magic) + 1 + 8 + 8 + 16
	committed = 1 << 0
	tombstone = 1 << 1
)

// pendingSuffix marks a tentative record's label.
const pendingSuffix = "\x00pending"

type record struct {
	h       ck.ObjectHandle
	flags   byte
	version uint64
	at      int64
	nonce   [16]byte
	value   []byte
}

func (r *record) encode() []byte {
	b := make([]byte, hdrLen, hdrLen+len(r.value))
	copy(b, magic)
	b[4] = r.flags
	binary.BigEndian.PutUint64(b[5:], r.version)
	binary.BigEndian.PutUint64(b[13:], uint64(r.at))
	copy(b[21:], r.nonce[:])
	return append(b, r.value...)
}

func decode(h ck.ObjectHandle, b []byte) (record, bool) {
	if len(b) < hdrLen || string(b[:4]) != magic {
		return record{}, false
	}
	r := record{h: h, flags: b[4] &^ committed, version: binary.BigEndian.Uint64(b[5:]), at: int64(binary.BigEndian.Uint64(b[13:]))}
	copy(r.nonce[:], b[21:hdrLen])
	r.value = append([]byte{}, b[hdrLen:]...)
	return r, true
}

// before orders records for "current": higher version first, then the
// smaller nonce.
func (r *record) beats(o *record) bool {
	if r.version != o.version {
		return r.version > o.version
	}
	return bytes.Compare(r.nonce[:], o.nonce[:]) < 0
}

func current(recs []record) *record {
	var cur *record
	for i := range recs {
		r := &recs[i]
		if r.flags&committed != 0 && (cur == nil || r.beats(cur)) {
			cur = r
		}
	}
	return cur
}

// template finds the namespace's objects labelled label ("": all).
func (s *tokenStore) template(label string) []ck.Attribute {
	t := []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_DATA))},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_APPLICATION, Value: s.app},
	}
	if label != "" {
		t = append(t, ck.Attribute{Type: ck.CKA_LABEL, Value: []byte(label)})
	}
	return t
}

// errVanished is a record destroyed between the search and the read: the
// search is run again.
var errVanished = errors.New("kv: record vanished")

// records reads key's committed records, and its tentative ones too if
// pending (tentative first: see OnToken's step 3); key "" reads every
// record of the namespace by label, tentative ones under their pending
// labels. A search is run again when a writer reaped a record under us.
func (s *tokenStore) records(sess token.Session, key string, pending bool) (map[string][]record, error) {
	for try := 0; ; try++ {
		out := map[string][]record{}
		var err error
		if pending {
			err = s.readOnce(sess, key+pendingSuffix, out)
			if rs := out[key+pendingSuffix]; len(rs) > 0 {
				delete(out, key+pendingSuffix)
				out[key] = rs
			}
		}
		if err == nil {
			err = s.readOnce(sess, key, out)
		}
		if err == errVanished && try < maxAttempts {
			continue
		}
		if err == errVanished {
			err = fmt.Errorf("%w %d times in a row", errVanished, try)
		}
		return out, err
	}
}

func (s *tokenStore) readOnce(sess token.Session, label string, out map[string][]record) error {
	hs, err := sess.FindObjects(s.template(label))
	if err != nil {
		return err
	}
	for _, h := range hs {
		v, err := sess.GetAttributes(h, ck.CKA_LABEL, ck.CKA_VALUE)
		switch token.RV(err) {
		case ck.CKR_OBJECT_HANDLE_INVALID:
			return errVanished
		case ck.CKR_ATTRIBUTE_VALUE_INVALID, ck.CKR_GENERAL_ERROR:
			// SoftHSMv2's answers for an object another session is
			// destroying at that moment; search again (an object that
			// truly fails keeps failing, and the retries run out).
			return errVanished
		}
		if err != nil {
			return err
		}
		r, ok := decode(h, v[1])
		if !ok {
			continue // not ours: some other application's object in our namespace
		}
		l := string(v[0])
		if !strings.HasSuffix(l, pendingSuffix) {
			r.flags |= committed
		}
		out[l] = append(out[l], r)
	}
	return nil
}

func (s *tokenStore) Get(key string) (val []byte, err error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	sess, err := s.session()
	if err != nil {
		return nil, err
	}
	defer func() { s.done(sess, err) }()
	recs, err := s.records(sess, key, false)
	if err != nil {
		return nil, fmt.Errorf("kv get: %w", err)
	}
	cur := current(recs[key])
	if cur == nil || cur.flags&tombstone != 0 {
		return nil, ErrNotFound
	}
	return cur.value, nil
}

func (s *tokenStore) List(prefix string) (keys []string, err error) {
	sess, err := s.session()
	if err != nil {
		return nil, err
	}
	defer func() { s.done(sess, err) }()
	all, err := s.records(sess, "", false)
	if err != nil {
		return nil, fmt.Errorf("kv list: %w", err)
	}
	now := s.now().UnixNano()
	for k, recs := range all {
		if strings.HasSuffix(k, pendingSuffix) {
			continue // a write in progress (or abandoned: its key's next writer reaps it)
		}
		cur := current(recs)
		if cur != nil && cur.flags&tombstone != 0 && len(recs) == 1 && now-cur.at >= int64(Lease) {
			// An old tombstone alone: no writer that read before it
			// can still commit (they give up after Lease/4), so it
			// has done its job.
			sess.DestroyObject(cur.h)
			continue
		}
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if cur != nil && cur.flags&tombstone == 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

func (s *tokenStore) Put(key string, val []byte) error {
	if err := checkValue(val); err != nil {
		return err
	}
	if val == nil {
		val = []byte{}
	}
	_, err := s.write(key, nil, val)
	return err
}

func (s *tokenStore) Delete(key string) error {
	_, err := s.write(key, nil, nil)
	return err
}

func (s *tokenStore) CompareAndSwap(key string, old, new []byte) (bool, error) {
	if err := checkValue(new); err != nil {
		return false, err
	}
	return s.write(key, func(cur *record) bool {
		present := cur != nil && cur.flags&tombstone == 0
		if old == nil {
			return !present
		}
		return present && bytes.Equal(cur.value, old)
	}, new)
}

// write runs the protocol of OnToken's doc: cond (nil for none) is checked
// against the current record; val nil writes a tombstone.
func (s *tokenStore) write(key string, cond func(cur *record) bool, val []byte) (ok bool, err error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	sess, err := s.session()
	if err != nil {
		return false, err
	}
	defer func() { s.done(sess, err) }()
	for attempt := 0; attempt < s.attempts; attempt++ {
		if attempt > 0 {
			// Jittered, growing wait: two writers that backed off
			// together should not collide again.
			d := time.Duration(mrand.Int64N(int64(time.Millisecond) << min(attempt, 8)))
			time.Sleep(d)
		}
		done, ok, err := s.try(sess, key, cond, val)
		if err != nil {
			return false, fmt.Errorf("kv write %q: %w", key, err)
		}
		if done {
			return ok, nil
		}
	}
	return false, ErrContended
}

// try is one round: done false means "overlapped, go again".
func (s *tokenStore) try(sess token.Session, key string, cond func(*record) bool, val []byte) (done, ok bool, err error) {
	readAt := s.now()
	all, err := s.records(sess, key, true)
	if err != nil {
		return false, false, fmt.Errorf("read: %w", err)
	}
	recs := all[key]
	cur := current(recs)
	if cond != nil && !cond(cur) {
		return true, false, nil
	}
	if val == nil && (cur == nil || cur.flags&tombstone != 0) {
		return true, true, nil // deleting what is not there
	}
	var v uint64 = 1
	if cur != nil {
		v = cur.version + 1
	}
	if s.ahead(recs, v, nil) {
		return false, false, nil // a writer is ahead of the version we read
	}
	mine := record{version: v, at: s.now().UnixNano(), value: val}
	if val == nil {
		mine.flags |= tombstone
	}
	if _, err := rand.Read(mine.nonce[:]); err != nil {
		return false, false, err
	}
	tmpl := append(s.template(key+pendingSuffix),
		ck.Attribute{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		ck.Attribute{Type: ck.CKA_VALUE, Value: mine.encode()})
	h, err := sess.CreateObject(tmpl)
	if err != nil {
		if token.RV(err) == ck.CKR_GENERAL_ERROR {
			// SoftHSMv2's file store fails a create now and then
			// under concurrent use; if the record exists after all,
			// take it back, and go again.
			if h, ok := s.findMine(sess, key+pendingSuffix, &mine); ok {
				sess.DestroyObject(h)
			}
			return false, false, nil
		}
		return false, false, fmt.Errorf("create: %w", err)
	}
	mine.h = h
	again, err := s.records(sess, key, true)
	if err != nil {
		sess.DestroyObject(h)
		return false, false, fmt.Errorf("check: %w", err)
	}
	if s.ahead(again[key], v, &mine) || s.now().Sub(readAt) > Lease/4 || (cur != nil && !still(again[key], cur)) {
		// Overlapped, too slow, or the record we read is gone with
		// nothing newer in its place: a reaped tombstone whose key was
		// made again from version 1, which our version would hide.
		sess.DestroyObject(h)
		return false, false, nil
	}
	mine.flags |= committed
	ch, err := sess.CreateObject(append(s.template(key),
		ck.Attribute{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		ck.Attribute{Type: ck.CKA_VALUE, Value: mine.encode()}))
	if err != nil {
		if ch2, ok := s.findMine(sess, key, &mine); ok {
			ch, err = ch2, nil // the create failed in word only
		} else if token.RV(err) == ck.CKR_GENERAL_ERROR {
			sess.DestroyObject(h)
			return false, false, nil // as above: go again
		} else {
			sess.DestroyObject(h)
			return false, false, fmt.Errorf("commit: %w", err)
		}
	}
	// The tentative record goes once the committed one exists; if this
	// fails, the record is reaped when it is Lease old (it blocks no one:
	// its version is the committed one's).
	sess.DestroyObject(h)
	mine.h = ch
	s.reap(sess, again[key], &mine)
	return true, true, nil
}

// still reports whether the record r read earlier is among recs.
func still(recs []record, r *record) bool {
	for i := range recs {
		if recs[i].h == r.h && recs[i].version == r.version && recs[i].nonce == r.nonce && recs[i].flags&committed != 0 {
			return true
		}
	}
	return false
}

// findMine looks for the record with mine's version and nonce under
// label: after a create that reported failure, whether it happened.
func (s *tokenStore) findMine(sess token.Session, label string, mine *record) (ck.ObjectHandle, bool) {
	out := map[string][]record{}
	if err := s.readOnce(sess, label, out); err != nil {
		return 0, false
	}
	for _, r := range out[label] {
		if r.version == mine.version && r.nonce == mine.nonce {
			return r.h, true
		}
	}
	return 0, false
}

// ahead reports a live record other than mine at version v or later: a
// committed one, or a tentative one younger than Lease.
func (s *tokenStore) ahead(recs []record, v uint64, mine *record) bool {
	now := s.now().UnixNano()
	for i := range recs {
		r := &recs[i]
		if mine != nil && r.h == mine.h {
			continue
		}
		if r.version < v {
			continue
		}
		if r.flags&committed != 0 || now-r.at < int64(Lease) {
			return true
		}
	}
	return false
}

// reap destroys what mine made obsolete: committed records below it and
// abandoned tentative ones. (A tombstone stays until List finds it alone
// and Lease old.)
// Failures are ignored: a record left behind is harmless (readers take
// the highest version) and the next writer reaps it.
func (s *tokenStore) reap(sess token.Session, recs []record, mine *record) {
	now := s.now().UnixNano()
	for i := range recs {
		r := &recs[i]
		if r.h == mine.h {
			continue
		}
		stale := now-r.at >= int64(Lease)
		if (r.flags&committed != 0 && r.version < mine.version) || (r.flags&committed == 0 && stale) {
			sess.DestroyObject(r.h)
		}
	}
}
