package hsm

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// TestConcurrentMakeUseLogout runs, at once, sessions that encapsulate
// to session keys (public and private) and destroy them, sessions that sign with a private
// token key, one that searches for the session keys, and one that logs
// out and in again and again. Operations
// look keys up without the token lock, so this is where a missed
// re-check would show (run with -race): every failure must be one a
// logout explains, every public key made must be destroyable, and at the
// end the token holds what it held at the start: no private session key
// made across a logout outlives it.
func TestConcurrentMakeUseLogout(t *testing.T) {
	m, s := userSession(t)
	pub, _ := mlkemPair(t, m, s, ck.CKP_ML_KEM_768)
	_, signKey, err := m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}},
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(true)}, {Type: ck.CKA_PRIVATE, Value: tb(true)}, {Type: ck.CKA_SIGN, Value: tb(true)}})
	must(t, err)
	// The first logout destroys the private half of the ML-KEM pair (a
	// private session object, §5.6 C_Logout); count what stays.
	must(t, m.Logout(s))
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	before := countObjects(t, m, s)

	// While the user is logged out a private key is invisible and an
	// operation begun with it ends.
	explained := func(err error) bool {
		return errors.Is(err, ck.CKR_KEY_HANDLE_INVALID) || errors.Is(err, ck.CKR_OPERATION_NOT_INITIALIZED) ||
			errors.Is(err, ck.CKR_USER_NOT_LOGGED_IN)
	}
	errs := make(chan error, 8)
	var workers sync.WaitGroup
	for w := 0; w < 3; w++ {
		workers.Add(2)
		go func() { // encapsulate to a session key, public or private, then destroy it
			defer workers.Done()
			ps, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
			if err != nil {
				errs <- err
				return
			}
			ct := make([]byte, 2048)
			for i := 0; i < 100; i++ {
				// A private session key needs the login, and a logout
				// destroys it (§5.6 C_Logout); a public one survives both.
				private := i%2 == 1
				tmpl := aesKeyTemplate(ck.Attribute{Type: ck.CKA_PRIVATE, Value: tb(private)})
				_, kh, err := m.EncapsulateKey(ps, kemMech, pub, tmpl, ct)
				if err == nil {
					err = m.DestroyObject(ps, kh)
				}
				if err != nil && !(private && (explained(err) || errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID))) {
					errs <- err
					return
				}
			}
		}()
		go func() { // sign with the private token key
			defer workers.Done()
			ps, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
			if err != nil {
				errs <- err
				return
			}
			signed := 0
			for i := 0; i < 100; i++ {
				err := m.SignInit(ps, ck.Mechanism{Type: ck.CKM_ECDSA}, signKey)
				if err == nil {
					_, _, err = m.Sign(ps, make([]byte, 32), 1024)
				}
				switch {
				case err == nil:
					signed++
				case explained(err):
					_ = m.SessionCancel(ps, ck.CKF_SIGN)
				default:
					errs <- err
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var flipper sync.WaitGroup
	flipper.Add(2)
	go func() { // search the other sessions' session keys as they come and go
		defer flipper.Done()
		fs, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
		if err != nil {
			errs <- err
			return
		}
		byClass := []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := m.FindObjectsInit(fs, byClass); err != nil {
				errs <- err
				return
			}
			if _, err := m.FindObjects(fs, 16); err != nil {
				errs <- err
				return
			}
			if err := m.FindObjectsFinal(fs); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() { // log out and in until the workers are done
		defer flipper.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := m.Logout(s); err != nil {
				errs <- err
				return
			}
			if err := m.Login(s, ck.CKU_USER, []byte(userPIN)); err != nil {
				errs <- err
				return
			}
		}
	}()
	workers.Wait()
	close(stop)
	flipper.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if after := countObjects(t, m, s); after != before {
		t.Fatalf("%d objects after, %d before", after, before)
	}
}

func countObjects(t *testing.T, m *Module, s ck.SessionHandle) int {
	t.Helper()
	must(t, m.FindObjectsInit(s, nil))
	hs, err := m.FindObjects(s, 1<<20)
	must(t, err)
	must(t, m.FindObjectsFinal(s))
	return len(hs)
}

// TestReadWhileDestroyingSessionObject: a session object is destroyed with
// no token lock, and destroying zeroes its secrets; another session reading
// the value, or copying the object, at the same moment must get the value
// or an invalid handle, never a value being zeroed (run with -race).
func TestReadWhileDestroyingSessionObject(t *testing.T) {
	m, a := userSession(t)
	b := openRW(t, m, 0)
	value := bytes.Repeat([]byte{0x5a}, 32)
	tmpl := []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_GENERIC_SECRET))},
		{Type: ck.CKA_VALUE, Value: value},
		{Type: ck.CKA_SENSITIVE, Value: tb(false)},
	}
	gone := func(err error) bool { return errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID) }
	for i := 0; i < 200; i++ {
		h, err := m.CreateObject(a, tmpl)
		must(t, err)
		done := make(chan error, 1)
		go func() {
			for {
				res, err := m.GetAttributeValue(b, h, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
				if err != nil {
					if !gone(err) {
						done <- err
						return
					}
					break
				}
				if !bytes.Equal(res[0].Value, value) {
					done <- fmt.Errorf("read %x while the object was destroyed", res[0].Value)
					return
				}
				c, err := m.CopyObject(b, h, nil)
				if err != nil {
					if !gone(err) {
						done <- err
						return
					}
					break
				}
				got, err := m.GetAttributeValue(b, c, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
				if err == nil {
					err = m.DestroyObject(b, c)
				}
				if err != nil {
					done <- err
					return
				}
				if !bytes.Equal(got[0].Value, value) {
					done <- fmt.Errorf("copy holds %x", got[0].Value)
					return
				}
			}
			done <- nil
		}()
		must(t, m.DestroyObject(a, h))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
