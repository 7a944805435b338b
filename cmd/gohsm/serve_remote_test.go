package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/hsm/ck"
)

// remoteClientCheck goes through the appliance with the Go client and the
// files of D/remote.conf, as libgohsm.so in remote mode does: the dev
// token and the free slot are there (dev-client sees every token and is
// admin), the printed user PIN logs in, and an ECDSA P-256 key made there
// signs what crypto/ecdsa verifies.
func remoteClientCheck(t *testing.T, dir string) {
	t.Helper()
	rc := map[string]string{}
	b, err := os.ReadFile(filepath.Join(dir, "remote.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, " = ")
		rc[k] = v
	}
	tlsConf, err := client.LoadTLS(rc["ca"], rc["cert"], rc["key"], "", rc["address"])
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.DefaultConfig()
	cfg.Address, cfg.TLS = rc["address"], tlsConf
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(); err != nil {
		t.Fatalf("C_Initialize through the appliance: %v", err)
	}
	defer c.Finalize()
	slots, err := c.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	dev, free := ck.SlotID(^uint64(0)), 0
	for _, s := range slots {
		info, err := c.GetTokenInfo(s)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case info.Flags&ck.CKF_TOKEN_INITIALIZED == 0:
			free++
		case info.Label == devLabel:
			dev = s
		}
	}
	if dev == ck.SlotID(^uint64(0)) || free != 1 {
		t.Fatalf("slots through the appliance: dev token %v, %d free slots (want the dev token and the admin's free slot)", dev, free)
	}
	s, err := c.OpenSession(dev, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(s, ck.CKU_USER, []byte(devUserPIN)); err != nil {
		t.Fatalf("the printed user PIN through the appliance: %v", err)
	}
	p256, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
	no, yes := []byte{0}, []byte{1}
	pub, priv, err := c.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: no}, {Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_VERIFY, Value: yes}},
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: no}, {Type: ck.CKA_SIGN, Value: yes}})
	if err != nil {
		t.Fatalf("key pair through the appliance: %v", err)
	}
	msg := []byte("through the appliance")
	if err := c.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv); err != nil {
		t.Fatal(err)
	}
	sig, _, err := c.Sign(s, msg, 256)
	if err != nil || len(sig) != 64 {
		t.Fatalf("sign: %d bytes, %v", len(sig), err)
	}
	res, err := c.GetAttributeValue(s, pub, []ck.AttributeRequest{{Type: ck.CKA_EC_POINT, Cap: 256}})
	if err != nil || len(res) != 1 {
		t.Fatalf("CKA_EC_POINT: %v", err)
	}
	var point []byte
	if _, err := asn1.Unmarshal(res[0].Value, &point); err != nil {
		t.Fatalf("CKA_EC_POINT: %v", err)
	}
	x, y := elliptic.Unmarshal(elliptic.P256(), point) //nolint:staticcheck // a raw point from the token
	if x == nil {
		t.Fatal("CKA_EC_POINT is not a P-256 point")
	}
	h := sha256.Sum256(msg)
	if !ecdsa.Verify(&ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the appliance's signature does not verify")
	}
	if err := c.Logout(s); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseSession(s); err != nil {
		t.Fatal(err)
	}
}
