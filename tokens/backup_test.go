package tokens_test

import (
	"bytes"
	"crypto/ecdh"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// cheapArgon2 keeps tests fast; the default costs ~0.2 s and 64 MiB.
var cheapArgon2 = tokens.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func firstStore(t *testing.T, dir string) (*tokens.Dir, *tokens.Store) {
	t.Helper()
	d, err := tokens.Open(dir)
	check(t, err)
	t.Cleanup(func() { d.Close() })
	stores, err := d.Stores()
	check(t, err)
	if len(stores) == 0 {
		t.Fatal("no token")
	}
	return d, stores[0].(*tokens.Store)
}

func tokenFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "tokens"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".db") || strings.HasSuffix(e.Name(), ".tmp") {
			names = append(names, e.Name())
		}
	}
	return names
}

// backupFixture is a token with a sensitive AES key and a data object; it
// returns the token directory, the backup and the key's ECB encryption of
// one block (to compare with the restored key).
func backupFixture(t *testing.T, key tokens.BackupKey) (string, []byte, []byte) {
	t.Helper()
	dir := initialised(t)
	m := engineOn(t, dir)
	s := userSession(t, m)
	h, err := m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		{Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)},
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_LABEL, Value: []byte("backed-up")},
	})
	check(t, err)
	_, err = m.CreateObject(s, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_DATA))},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_LABEL, Value: []byte("note")},
		{Type: ck.CKA_VALUE, Value: []byte("public data")},
	})
	check(t, err)
	ct := ecb(t, m, s, h)
	_, st := firstStore(t, dir)
	var buf bytes.Buffer
	check(t, st.Backup(&buf, key))
	return dir, buf.Bytes(), ct
}

func ecb(t *testing.T, m *hsm.Module, s ck.SessionHandle, h ck.ObjectHandle) []byte {
	t.Helper()
	check(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_ECB}, h))
	ct, _, err := m.Encrypt(s, []byte("0123456789abcdef"), 16)
	check(t, err)
	return ct
}

// checkRestored opens the restored token with its original PINs and
// checks the key encrypts as it did.
func checkRestored(t *testing.T, dir string, wantCT []byte) {
	t.Helper()
	m := engineOn(t, dir)
	s := userSession(t, m)
	hs := findLabel(t, m, s, "backed-up")
	if len(hs) != 1 {
		t.Fatalf("restored token has %d keys labelled backed-up", len(hs))
	}
	if !bytes.Equal(ecb(t, m, s, hs[0]), wantCT) {
		t.Fatal("the restored key encrypts differently")
	}
	if n := len(findLabel(t, m, s, "note")); n != 1 {
		t.Fatalf("restored token has %d data objects", n)
	}
	so, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, m.Logout(s))
	check(t, m.Login(so, ck.CKU_SO, []byte("so-pin-1")))
}

func TestBackupRestorePassphrase(t *testing.T) {
	key := tokens.BackupKey{Passphrase: []byte("correct horse"), Argon2: cheapArgon2}
	_, backup, ct := backupFixture(t, key)
	if bytes.Contains(backup, []byte("backed-up")) || bytes.Contains(backup, []byte("public data")) {
		t.Fatal("the backup shows the token's contents in the clear")
	}

	other := t.TempDir() // another machine
	d, err := tokens.Open(other)
	check(t, err)
	if _, err := d.Restore(bytes.NewReader(backup), tokens.BackupKey{Passphrase: []byte("wrong horse")}); !errors.Is(err, tokens.ErrBackupAuth) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := d.Restore(bytes.NewReader(backup), tokens.BackupKey{}); err == nil {
		t.Fatal("restore without a passphrase worked")
	}
	if f := tokenFiles(t, other); len(f) != 0 {
		t.Fatalf("failed restores left %v", f)
	}
	st, err := d.Restore(bytes.NewReader(backup), tokens.BackupKey{Passphrase: []byte("correct horse")})
	check(t, err)
	check(t, st.Check())
	check(t, d.Close())
	checkRestored(t, other, ct)

	// Once restored, the same token (same serial) is refused.
	d, err = tokens.Open(other)
	check(t, err)
	defer d.Close()
	if _, err := d.Restore(bytes.NewReader(backup), tokens.BackupKey{Passphrase: []byte("correct horse")}); err == nil ||
		!strings.Contains(err.Error(), "already here") {
		t.Fatalf("second restore of one token: %v", err)
	}
	if f := tokenFiles(t, other); len(f) != 1 {
		t.Fatalf("token files after a refused restore: %v", f)
	}
}

func TestBackupRestoreRecipient(t *testing.T) {
	for _, curve := range []ecdh.Curve{ecdh.X25519(), ecdh.P256()} {
		t.Run(fmt.Sprint(curve), func(t *testing.T) {
			id, err := curve.GenerateKey(crand.Reader)
			check(t, err)
			_, backup, ct := backupFixture(t, tokens.BackupKey{Recipient: id.PublicKey()})
			stranger, err := curve.GenerateKey(crand.Reader)
			check(t, err)
			other := t.TempDir()
			d, err := tokens.Open(other)
			check(t, err)
			if _, err := d.Restore(bytes.NewReader(backup), tokens.BackupKey{Identity: stranger}); !errors.Is(err, tokens.ErrBackupAuth) {
				t.Fatalf("restore with another key: %v", err)
			}
			if _, err := d.Restore(bytes.NewReader(backup), tokens.BackupKey{Passphrase: []byte("x")}); err == nil {
				t.Fatal("a passphrase opened a public-key backup")
			}
			_, err = d.Restore(bytes.NewReader(backup), tokens.BackupKey{Identity: id})
			check(t, err)
			check(t, d.Close())
			checkRestored(t, other, ct)
		})
	}
}

// TestBackupTampered flips bytes all over a backup (every header byte,
// both sides of every chunk boundary, and a random sample elsewhere), cuts
// it, extends it: each must be rejected and leave no token behind.
func TestBackupTampered(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  tokens.BackupKey
		open tokens.BackupKey
	}{
		{"passphrase", tokens.BackupKey{Passphrase: []byte("pw"), Argon2: cheapArgon2}, tokens.BackupKey{Passphrase: []byte("pw")}},
		{"recipient", tokens.BackupKey{}, tokens.BackupKey{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "recipient" {
				id, err := ecdh.X25519().GenerateKey(crand.Reader)
				check(t, err)
				tc.key.Recipient, tc.open.Identity = id.PublicKey(), id
			}
			dir, backup, _ := backupFixture(t, tc.key)
			// Make the body span several chunks.
			_, st := firstStore(t, dir)
			if len(backup) < 3*64*1024 {
				m := engineOn(t, dir)
				s := userSession(t, m)
				for i := range 200 {
					_, err := m.CreateObject(s, []ck.Attribute{
						{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_DATA))},
						{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
						{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("filler-%d", i))},
						{Type: ck.CKA_VALUE, Value: bytes.Repeat([]byte{byte(i)}, 1000)},
					})
					check(t, err)
				}
				var buf bytes.Buffer
				check(t, st.Backup(&buf, tc.key))
				backup = buf.Bytes()
			}
			const sealed = 64*1024 + 16
			// magic, kind, then Argon2 salt and costs or the X25519 key
			// and recipient id, then the nonce.
			hdrLen := 8 + 1 + 25 + 16
			if tc.key.Recipient != nil {
				hdrLen = 8 + 1 + 3 + 32 + 8 + 16
			}
			if len(backup) < 3*sealed {
				t.Fatalf("backup of %d bytes spans fewer than 3 chunks", len(backup))
			}
			other := t.TempDir()
			d, err := tokens.Open(other)
			check(t, err)
			defer d.Close()
			reject := func(what string, b []byte) {
				t.Helper()
				if _, err := d.Restore(bytes.NewReader(b), tc.open); err == nil {
					t.Fatalf("%s: accepted", what)
				}
			}
			positions := map[int]bool{}
			for i := range hdrLen + 1 {
				positions[i] = true
			}
			for c := hdrLen; c < len(backup); c += sealed {
				for _, off := range []int{-17, -16, -1, 0, 1, 12, 16, 17} {
					if p := c + off; p >= 0 && p < len(backup) {
						positions[p] = true
					}
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 300 {
				positions[rng.IntN(len(backup))] = true
			}
			positions[len(backup)-1] = true
			b := bytes.Clone(backup)
			for p := range positions {
				bit := byte(1) << rng.IntN(8)
				b[p] ^= bit
				reject(fmt.Sprintf("bit flipped at %d of %d", p, len(b)), b)
				b[p] ^= bit
			}
			for _, n := range []int{0, 7, hdrLen - 1, hdrLen, hdrLen + 1, hdrLen + sealed, hdrLen + 2*sealed, len(b) - 16, len(b) - 1} {
				reject(fmt.Sprintf("cut to %d bytes", n), b[:n])
			}
			reject("one byte added", append(bytes.Clone(b), 0))
			reject("one empty chunk added", append(bytes.Clone(b), make([]byte, 16)...))
			// Chunks swapped.
			sw := bytes.Clone(b)
			copy(sw[hdrLen:], b[hdrLen+sealed:hdrLen+2*sealed])
			copy(sw[hdrLen+sealed:], b[hdrLen:hdrLen+sealed])
			reject("chunks 0 and 1 swapped", sw)
			if f := tokenFiles(t, other); len(f) != 0 {
				t.Fatalf("rejected restores left %v", f)
			}
			t.Logf("%d flipped positions, 9 cuts, 2 extensions and a swap of a %d-byte backup rejected", len(positions), len(backup))
			// The untouched backup still restores.
			_, err = d.Restore(bytes.NewReader(backup), tc.open)
			check(t, err)
		})
	}
}

// TestBackupWhileWriting takes backups while another engine keeps
// creating objects: each backup is one consistent snapshot that restores
// and passes the full check.
func TestBackupWhileWriting(t *testing.T) {
	dir := initialised(t)
	writer := engineOn(t, dir)
	ws := userSession(t, writer)
	_, st := firstStore(t, dir)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var made int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := writer.CreateObject(ws, []ck.Attribute{
				{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
				{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))},
				{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
				{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("w-%d", made))},
				{Type: ck.CKA_VALUE, Value: bytes.Repeat([]byte{1}, 32)},
			})
			if err != nil {
				t.Error(err)
				return
			}
			made++
		}
	}()
	key := tokens.BackupKey{Passphrase: []byte("pw"), Argon2: cheapArgon2}
	var backups [][]byte
	for range 5 {
		var buf bytes.Buffer
		check(t, st.Backup(&buf, key))
		backups = append(backups, buf.Bytes())
	}
	close(stop)
	wg.Wait()
	for i, b := range backups {
		d, err := tokens.Open(t.TempDir())
		check(t, err)
		rs, err := d.Restore(bytes.NewReader(b), key)
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		check(t, rs.Check())
		check(t, d.Close())
	}
	t.Logf("5 backups taken while %d objects were created", made)
}
