package transit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestAutoRotate(t *testing.T) {
	f := newFixture(t, Config{})
	mustOK(f.e.CreateKey(bg, "due", &CreateKeyRequest{AutoRotatePeriod: Duration(time.Hour)}))(t)
	mustOK(f.e.CreateKey(bg, "fresh", &CreateKeyRequest{AutoRotatePeriod: Duration(time.Hour)}))(t)
	mustOK(f.e.CreateKey(bg, "off", nil))(t)
	// Age the versions of "due" and "off" by two hours.
	for _, n := range []string{"due", "off"} {
		mustOK(f.e.update(n, func(r *ring) error {
			r.Versions[1].Created = r.Versions[1].Created.Add(-2 * time.Hour)
			return nil
		}))(t)
	}
	got := mustOK(f.e.AutoRotate(bg))(t)
	if strings.Join(got, ",") != "due" {
		t.Fatalf("rotated %v", got)
	}
	if rk := mustOK(f.e.ReadKey(bg, "due"))(t); rk.LatestVersion != 2 || rk.AutoRotatePeriod != 3600 {
		t.Fatalf("%+v", rk)
	}
	if got := mustOK(f.e.AutoRotate(bg))(t); len(got) != 0 {
		t.Fatalf("rotated again: %v", got)
	}
}

// failExec fails every Do as a dead token would.
type failExec struct{ calls int }

func (x *failExec) Do(ctx context.Context, f func(token.Session, func([]byte) (ck.ObjectHandle, error)) error) error {
	x.calls++
	return ck.CKR_DEVICE_REMOVED
}
func (x *failExec) Replicate(context.Context, []byte) error { return nil }

// A token failure is a 500 naming the PKCS#11 code, per item in a batch;
// nothing of the request shows in it.
func TestTokenFailure(t *testing.T) {
	f := newFixture(t, Config{})
	mustOK(f.e.CreateKey(bg, "k", nil))(t)
	x := &failExec{}
	e2, err := New("transit", x, f.e.meta, Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e2.Encrypt(bg, "k", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("top secret")}})
	wantErr(t, err, 500, "CKR_DEVICE_REMOVED")
	r := mustOK(e2.Encrypt(bg, "k", &EncryptRequest{BatchInput: []EncryptItem{{Plaintext: b64s("top secret")}, {Plaintext: b64s("b")}}}))(t)
	if r.Status() != 500 || r.Failed != 2 || !strings.Contains(r.BatchResults[1].Error, "CKR_DEVICE_REMOVED") {
		t.Fatalf("%d %+v", r.Status(), r.BatchResults)
	}
	if strings.Contains(r.BatchResults[0].Error, b64s("top secret")) {
		t.Fatal("error shows the plaintext")
	}
	_, err = e2.RotateKey(bg, "k", nil)
	if err == nil || AsError(err).Status != 500 {
		t.Fatalf("rotate on a dead token: %v", err)
	}
	// The failed rotation changed nothing.
	if rk := mustOK(f.e.ReadKey(bg, "k"))(t); rk.LatestVersion != 1 {
		t.Fatal(rk.LatestVersion)
	}
	var te *Error
	if errors.As(err, &te) && strings.Contains(te.Msg, "secret") {
		t.Fatal(te.Msg)
	}
}
