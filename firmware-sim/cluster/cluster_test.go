package cluster

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// A key made through one member is usable through the others as soon as
// the call returns; changes and destroys show everywhere; writes made on
// followers go through the leader.
func TestThreeMembersReadYourWrites(t *testing.T) {
	tc := startCluster(t, 3)
	l := tc.leader()
	var followers []*Node
	for _, n := range tc.nodes {
		if n != l {
			followers = append(followers, n)
		}
	}
	initToken(t, followers[0]) // through a follower: forwarded
	ms := make([]*hsm.Module, 3)
	ss := make([]ck.SessionHandle, 3)
	for i, n := range tc.nodes {
		ms[i] = engine(t, n)
		ss[i] = userSession(t, ms[i])
	}
	for i := range 12 {
		a, b, c := i%3, (i+1)%3, (i+2)%3
		label := fmt.Sprintf("k%d", i)
		h, err := ms[a].GenerateKey(ss[a], ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
			{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
			{Type: ck.CKA_LABEL, Value: []byte(label)}})
		check(t, err)
		// At once on b: no sleep, no retry.
		hs := findLabel(t, ms[b], ss[b], label)
		if len(hs) != 1 {
			t.Fatalf("member %d sees %d objects %q just made on member %d", b, len(hs), label, a)
		}
		check(t, ms[b].EncryptInit(ss[b], gcm, hs[0]))
		ct, _, err := ms[b].Encrypt(ss[b], []byte("across members"), 100)
		check(t, err)
		check(t, ms[a].DecryptInit(ss[a], gcm, h))
		pt, _, err := ms[a].Decrypt(ss[a], ct, 100)
		check(t, err)
		if string(pt) != "across members" {
			t.Fatal("round trip across members failed")
		}
		// Relabel on b, visible on c; destroy on c, gone on a.
		check(t, ms[b].SetAttributeValue(ss[b], hs[0], []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(label + "-r")}}))
		hc := findLabel(t, ms[c], ss[c], label+"-r")
		if len(hc) != 1 {
			t.Fatalf("member %d does not see the relabel made on %d", c, b)
		}
		check(t, ms[c].DestroyObject(ss[c], hc[0]))
		if n := len(findLabel(t, ms[a], ss[a], label+"-r")); n != 0 {
			t.Fatalf("member %d still finds an object destroyed on %d", a, c)
		}
		if err := ms[a].EncryptInit(ss[a], gcm, h); err == nil {
			t.Fatalf("member %d still uses a key destroyed on %d", a, c)
		}
	}
	// Every member's copy is the same, version for version.
	assertCopiesEqual(t, tc.nodes)
}

func assertCopiesEqual(t *testing.T, nodes []*Node) {
	t.Helper()
	var ref []byte
	for i, n := range nodes {
		if n == nil {
			continue
		}
		check(t, n.Barrier())
		var states []slotState
		for _, slot := range n.fsm.Slots() {
			st, err := n.fsm.store(slot).ExportState()
			check(t, err)
			states = append(states, slotState{Slot: slot, State: st})
		}
		b := encodeSnapshot(0, states)
		if ref == nil {
			ref = b
		} else if !bytes.Equal(ref, b) {
			t.Fatalf("member %d's copy differs from member 0's", i)
		}
	}
}

// A member that decided on a stale version cannot write it: the
// compare-and-set holds across the cluster, and a destroyed object never
// comes back.
func TestStaleMemberConflicts(t *testing.T) {
	tc := startCluster(t, 3)
	initToken(t, tc.nodes[0])
	ma := engine(t, tc.nodes[1])
	sa := userSession(t, ma)
	h, err := ma.CreateObject(sa, aesKeyTemplate("cas", bytes.Repeat([]byte{7}, 32)))
	check(t, err)

	// Member 2's raw view of the object, as its engine would have it.
	stB, err := tc.nodes[2].Storage()
	check(t, err)
	defer stB.Close()
	stores, err := stB.Stores()
	check(t, err)
	b := stores[0].(*Store)
	var old *hsm.ObjectRecord
	check(t, b.Objects(func(o *hsm.ObjectRecord) error {
		for _, a := range o.Attrs {
			if a.Type == ck.CKA_LABEL && string(a.Value) == "cas" {
				old = o
			}
		}
		return nil
	}))
	if old == nil {
		t.Fatal("member 2 does not have the object")
	}
	// Member 1 makes it non-sensitive-proof: relabel (a new version).
	check(t, ma.SetAttributeValue(sa, h, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("cas-2")}}))
	// Member 2 writes back its stale record: refused.
	stale := *old
	err = b.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{&stale}})
	if !errors.Is(err, hsm.ErrConflict) {
		t.Fatalf("stale write from another member: %v, want ErrConflict", err)
	}
	// Destroy on member 1; member 2 re-inserting the id is refused.
	check(t, ma.DestroyObject(sa, h))
	back := *old
	back.Gen = 0
	err = b.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{&back}})
	if !errors.Is(err, hsm.ErrConflict) {
		t.Fatalf("resurrecting a destroyed object from another member: %v, want ErrConflict", err)
	}
	// And a Require on the old version conflicts too.
	err = b.Commit(&hsm.Change{Require: []hsm.ObjectVersion{{ID: old.ID, Gen: old.Gen}}})
	if !errors.Is(err, hsm.ErrConflict) {
		t.Fatalf("require of a stale version: %v, want ErrConflict", err)
	}
	assertCopiesEqual(t, tc.nodes)
}

// The leader dies; the others elect a new one and go on; the dead member
// comes back, rebuilds its copy from its log and catches up.
func TestLeaderLossAndRestart(t *testing.T) {
	tc := startCluster(t, 3)
	initToken(t, tc.nodes[0])
	old := tc.leader()
	idx := -1
	for i, n := range tc.nodes {
		if n == old {
			idx = i
		}
	}
	var ms []*hsm.Module
	var ss []ck.SessionHandle
	for _, n := range tc.nodes {
		if n != old {
			m := engine(t, n)
			ms, ss = append(ms, m), append(ss, userSession(t, m))
		}
	}
	_, err := ms[0].CreateObject(ss[0], aesKeyTemplate("before", bytes.Repeat([]byte{1}, 32)))
	check(t, err)
	check(t, old.Close())
	start := time.Now()
	nl := tc.leader()
	t.Logf("new leader %s after %v", nl.ID(), time.Since(start))
	_, err = ms[1].CreateObject(ss[1], aesKeyTemplate("after", bytes.Repeat([]byte{2}, 32)))
	check(t, err)
	if len(findLabel(t, ms[0], ss[0], "after")) != 1 {
		t.Fatal("write after failover not visible")
	}
	back := tc.restart(idx)
	check(t, back.WaitLeader(10*time.Second))
	mb := engine(t, back)
	sb := userSession(t, mb)
	for _, l := range []string{"before", "after"} {
		if len(findLabel(t, mb, sb, l)) != 1 {
			t.Fatalf("restarted member lacks %q", l)
		}
	}
	assertCopiesEqual(t, tc.nodes)
}

// A member that joins after the log was compacted catches up from a
// snapshot; neither the log nor the snapshots nor the copies hold a
// plaintext key or PIN.
func TestSnapshotJoinAndNoPlaintext(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.TrailingLogs = 1; c.SnapshotThreshold = 1 << 20 })
	initToken(t, tc.nodes[0])
	m := engine(t, tc.nodes[1])
	s := userSession(t, m)
	secret := []byte("PLAINTEXT-KEY-0123456789abcdef!!") // 32 bytes, an AES-256 key
	h, err := m.CreateObject(s, aesKeyTemplate("known", secret))
	check(t, err)
	check(t, m.EncryptInit(s, gcm, h))
	ct, _, err := m.Encrypt(s, []byte("hello"), 100)
	check(t, err)
	for i := range 5 {
		_, err := m.CreateObject(s, aesKeyTemplate(fmt.Sprintf("more%d", i), bytes.Repeat([]byte{byte(i)}, 32)))
		check(t, err)
	}
	l := tc.leader()
	check(t, l.raft.Snapshot().Error())
	// More after the snapshot, so the new member needs snapshot + log.
	_, err = m.CreateObject(s, aesKeyTemplate("post-snap", bytes.Repeat([]byte{9}, 32)))
	check(t, err)
	check(t, l.raft.Snapshot().Error())
	n4 := tc.add(3)
	tc.waitMembers(4)
	m4 := engine(t, n4)
	s4 := userSession(t, m4)
	hs := findLabel(t, m4, s4, "known")
	if len(hs) != 1 {
		t.Fatal("new member lacks the key")
	}
	check(t, m4.DecryptInit(s4, gcm, hs[0]))
	pt, _, err := m4.Decrypt(s4, ct, 100)
	check(t, err)
	if string(pt) != "hello" {
		t.Fatal("new member decrypts wrongly")
	}
	if len(findLabel(t, m4, s4, "post-snap")) != 1 {
		t.Fatal("new member lacks what was written after the snapshot")
	}
	if st := n4.Status(); st.StoreApplied == 0 {
		t.Fatal("new member applied nothing")
	}
	assertCopiesEqual(t, tc.nodes)

	needles := map[string][]byte{
		"key":        secret,
		"key hex":    []byte(hex.EncodeToString(secret)),
		"key base64": []byte(base64.StdEncoding.EncodeToString(secret)),
		"user PIN":   []byte(userPIN),
		"SO PIN":     []byte(soPIN),
	}
	files, snaps := 0, 0
	for i, dir := range tc.dirs {
		// Close first so that everything is on disk (WAL checkpoint,
		// bbolt), then search every file of the member.
		tc.nodes[i].Close()
		check(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			if filepath.Base(p) == "state.bin" {
				snaps++
			}
			for what, nd := range needles {
				if bytes.Contains(b, nd) {
					t.Errorf("%s in the clear in %s", what, p)
				}
			}
			return nil
		}))
	}
	if snaps == 0 {
		t.Fatal("no snapshot file was searched")
	}
	t.Logf("searched %d files (%d snapshots)", files, snaps)
}

// Only holders of a cluster certificate get anything from the raft port.
func TestNonMemberRefused(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	other := newCA(t, "other-ca")
	for name, conf := range map[string]func() (any, error){
		"cert from another CA": func() (any, error) {
			return dialMember(n.Addr(), other.memberTLS(t, "intruder"), muxRPC, 2*time.Second)
		},
		"no certificate": func() (any, error) {
			c := tc.ca.memberTLS(t, "x").Clone()
			c.Certificates = nil
			return dialMember(n.Addr(), c, muxRaft, 2*time.Second)
		},
	} {
		c, err := conf()
		if err == nil {
			// TLS 1.3: the server's verdict on the client certificate
			// arrives with the first read.
			nc := c.(interface {
				Read([]byte) (int, error)
				Close() error
			})
			_, err = nc.Read(make([]byte, 1))
			nc.Close()
		}
		if err == nil {
			t.Errorf("%s: connected", name)
		}
	}
	// A would-be member with a foreign certificate cannot join.
	cfg := testConfig(t, other, 5, t.TempDir())
	cfg.Join = n.Addr()
	cfg.WriteTimeout = 300 * time.Millisecond
	if nd, err := Start(cfg); err == nil {
		nd.Close()
		t.Fatal("a member with a foreign certificate joined")
	}
	if f := n.raft.GetConfiguration(); f.Error() != nil || len(f.Configuration().Servers) != 1 {
		t.Fatal("configuration changed")
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, x := range sampleEntries() {
		b := encodeEntry(x)
		y, err := decodeEntry(b)
		check(t, err)
		if !bytes.Equal(encodeEntry(y), b) {
			t.Fatalf("%s: round trip differs", x.Op)
		}
		if x.Token != nil && !reflect.DeepEqual(x.Token.SOKey, y.Token.SOKey) {
			t.Fatalf("%s: token record differs", x.Op)
		}
		// Every truncation fails cleanly.
		for i := range len(b) {
			if _, err := decodeEntry(b[:i]); err == nil {
				t.Fatalf("%s: truncated to %d decodes", x.Op, i)
			}
		}
	}
}

func sampleEntries() []*entry {
	rec := &hsm.TokenRecord{Label: "t", Serial: "0123", UserPINSet: true, SOFailures: 2, UserFailures: 1,
		SOKey:     hsm.WrappedKey{KDF: "pbkdf2-sha256", Salt: []byte("salt"), Iterations: 10, Nonce: []byte("nonce"), Sealed: []byte("sealed")},
		UserKey:   hsm.WrappedKey{KDF: "pbkdf2-sha256", Salt: []byte("s2"), Iterations: 11, Nonce: []byte("n2"), Sealed: []byte("x2")},
		PublicKey: []byte("pk")}
	obj := &hsm.ObjectRecord{ID: 5, Gen: 3, Private: true, Attrs: []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("l")},
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))}}, Sealed: []byte("blob")}
	return []*entry{
		{Op: opCreateToken},
		{Op: opReinit, Slot: 1, Token: rec},
		{Op: opSaveToken, Slot: 2, Token: rec},
		{Op: opSaveTokenIf, Slot: 1, Gen: 9, Token: rec},
		{Op: opCommit, Slot: 1, Change: &hsm.Change{Put: []*hsm.ObjectRecord{obj}, Delete: []hsm.ObjectVersion{{ID: 6, Gen: 2}},
			Require: []hsm.ObjectVersion{{ID: 7, Gen: 1}}}},
		{Op: opReserveIDs, Slot: 1, N: 64},
	}
}

// The PIN retry counter is exact across members: ten wrong PINs, spread
// over three members and concurrent, lock the PIN everywhere (UpdateToken's
// compare-and-set loop through the log loses no failure).
func TestPINCounterAcrossMembers(t *testing.T) {
	tc := startCluster(t, 3)
	initToken(t, tc.nodes[0])
	var ms []*hsm.Module
	var ss []ck.SessionHandle
	for _, n := range tc.nodes {
		m := engine(t, n)
		s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		check(t, err)
		ms, ss = append(ms, m), append(ss, s)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := ms[i%3].Login(ss[i%3], ck.CKU_USER, []byte("wrong-pin"))
			if !errors.Is(err, ck.CKR_PIN_INCORRECT) && !errors.Is(err, ck.CKR_PIN_LOCKED) {
				t.Errorf("wrong PIN: %v", err)
			}
		}()
	}
	wg.Wait()
	for i, m := range ms {
		info, err := m.GetTokenInfo(0)
		check(t, err)
		if info.Flags&ck.CKF_USER_PIN_LOCKED == 0 {
			t.Fatalf("member %d: after 10 failures across three members the PIN is not locked: %#x", i, info.Flags)
		}
		if err := m.Login(ss[i], ck.CKU_USER, []byte(userPIN)); !errors.Is(err, ck.CKR_PIN_LOCKED) {
			t.Fatalf("member %d: locked PIN accepted: %v", i, err)
		}
	}
}

// An entry every member refuses alike (malformed, an unknown slot, a
// conflict) is an answer, not a divergence: the member stays usable.
func TestRefusedEntriesDoNotBreak(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	initToken(t, n)
	for name, data := range map[string][]byte{
		"garbage":      {1, 2, 3},
		"unknown slot": encodeEntry(&entry{Op: opReserveIDs, Slot: 77, N: 1}),
		"conflict": encodeEntry(&entry{Op: opCommit, Slot: 1, Change: &hsm.Change{
			Delete: []hsm.ObjectVersion{{ID: 999, Gen: 1}}}}),
	} {
		res := n.fsm.apply(data)
		if res.Err == "" {
			t.Errorf("%s: applied", name)
		}
		if err := n.fsm.Broken(); err != nil {
			t.Fatalf("%s: member broken: %v", name, err)
		}
	}
	// And through the front door: the leader refuses a malformed entry
	// before it reaches the log.
	var res Result
	if err := (&memberRPC{n: n}).Apply([]byte{1, 99}, &res); err == nil {
		t.Fatal("malformed entry accepted by the leader")
	}
}

// A backup (the store's content, encrypted as a token backup) restores
// into a new cluster, whose members then use the keys; it is refused by a
// cluster that has tokens, and by a wrong passphrase.
func TestBackupRestoreNewCluster(t *testing.T) {
	a := startCluster(t, 3)
	initToken(t, a.nodes[0])
	m := engine(t, a.nodes[1])
	s := userSession(t, m)
	secret := []byte("BACKUP-KEY-0123456789abcdef!!!!!")
	h, err := m.CreateObject(s, aesKeyTemplate("backed-up", secret))
	check(t, err)
	check(t, m.EncryptInit(s, gcm, h))
	ct, _, err := m.Encrypt(s, []byte("before the backup"), 100)
	check(t, err)

	snap, err := a.nodes[2].Backup()
	check(t, err)
	var enc bytes.Buffer
	key := tokens.BackupKey{Passphrase: []byte("correct horse"), Argon2: tokens.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}}
	check(t, tokens.EncryptBackup(&enc, bytes.NewReader(snap), key))
	for _, needle := range [][]byte{secret, []byte("backed-up"), []byte(userPIN)} {
		if bytes.Contains(enc.Bytes(), needle) {
			t.Fatalf("%q in the clear in the encrypted backup", needle)
		}
	}
	if bytes.Contains(snap, secret) {
		t.Fatal("the key in the clear in the snapshot")
	}
	// The cluster it came from refuses it: it has tokens.
	if _, err := a.nodes[0].Restore(snap); err == nil {
		t.Fatal("restore into a cluster with tokens accepted")
	}
	var wrong bytes.Buffer
	if err := tokens.DecryptBackup(&wrong, bytes.NewReader(enc.Bytes()), tokens.BackupKey{Passphrase: []byte("wrong")}); err == nil {
		t.Fatal("wrong passphrase accepted")
	}

	b := startCluster(t, 3)
	var plain bytes.Buffer
	check(t, tokens.DecryptBackup(&plain, bytes.NewReader(enc.Bytes()), key))
	n, err := b.nodes[1].Restore(plain.Bytes()) // through a follower or the leader
	check(t, err)
	if n != 1 {
		t.Fatalf("restored %d tokens", n)
	}
	for i, nd := range b.nodes {
		mb := engine(t, nd)
		sb := userSession(t, mb)
		hs := findLabel(t, mb, sb, "backed-up")
		if len(hs) != 1 {
			t.Fatalf("new cluster member %d lacks the key", i)
		}
		check(t, mb.DecryptInit(sb, gcm, hs[0]))
		pt, _, err := mb.Decrypt(sb, ct, 100)
		check(t, err)
		if string(pt) != "before the backup" {
			t.Fatal("restored key decrypts wrongly")
		}
		// And the restored cluster takes writes.
		_, err = mb.CreateObject(sb, aesKeyTemplate(fmt.Sprintf("after-restore-%d", i), bytes.Repeat([]byte{byte(i)}, 32)))
		check(t, err)
	}
	assertCopiesEqual(t, b.nodes)
}
