package device

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// A share file is one custodian's part of the master key, JSON:
//
//	{"gohsm_share": 1, "device": ID, "index": i, "threshold": m, "shares": n,
//	 "value": HEX,                              (a plain share)
//	 "recipient": HEX8, "curve": "X25519", "epk": HEX, "sealed": HEX,   (or one encrypted to a custodian)
//	 "check": HEX16}
//
// value is the Shamir share (33 bytes: 32 values and the x coordinate,
// shamir's layout). check is the first 8 bytes of SHA-256 over every other
// field, so a damaged file (a flipped character, a cut) is named as
// corrupted before anything else; the device then matches the value
// against its digest for index i (stateDoc.ShareDigests), so a share of
// another device or ceremony, or one altered with its check recomputed, is
// named as not this device's. An encrypted share is sealed to the
// custodian's X25519 or NIST P-curve key with the construction gohsm's
// token backups use (tokens/backup.go: an ephemeral ECDH key, HKDF-SHA256
// with both public keys in the info, AES-256-GCM), under its own label.
type Share struct {
	Format    int    `json:"gohsm_share"`
	Device    string `json:"device"`
	Index     int    `json:"index"`
	Threshold int    `json:"threshold"`
	Shares    int    `json:"shares"`
	Value     string `json:"value,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	Curve     string `json:"curve,omitempty"`
	EPK       string `json:"epk,omitempty"`
	Sealed    string `json:"sealed,omitempty"`
	Check     string `json:"check"`
}

// ErrShareCorrupted: the file's checksum does not match its contents.
var ErrShareCorrupted = errors.New("share is corrupted (its checksum does not match)")

// ErrShareWrong: an intact share that is not one this device issued.
var ErrShareWrong = errors.New("not a share of this device's master key")

func (s *Share) checksum() string {
	c := *s
	c.Check = ""
	b, _ := json.Marshal(&c)
	h := sha256.Sum256(append([]byte("gohsm share file v1\x00"), b...))
	return hex.EncodeToString(h[:8])
}

// Encrypted reports whether the share is sealed to a custodian's key.
func (s *Share) Encrypted() bool { return s.Sealed != "" }

// Marshal is the share file's text.
func (s *Share) Marshal() []byte {
	s.Check = s.checksum()
	b, _ := json.MarshalIndent(s, "", " ")
	return append(b, '\n')
}

// ParseShare reads a share file and checks its checksum. Anything that
// does not parse is corrupted too.
func ParseShare(b []byte) (*Share, error) {
	var s Share
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrShareCorrupted, err)
	}
	if s.Format != 1 || s.Check == "" || subtle.ConstantTimeCompare([]byte(s.checksum()), []byte(s.Check)) != 1 {
		return nil, ErrShareCorrupted
	}
	if s.Index < 1 || s.Index > 255 || (s.Value == "") == (s.Sealed == "") {
		return nil, ErrShareCorrupted
	}
	return &s, nil
}

func shareDigest(id string, index int, value []byte) string {
	h := sha256.New()
	h.Write([]byte("gohsm share v1\x00"))
	h.Write([]byte(id))
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(index))
	h.Write(n[:])
	h.Write(value)
	return hex.EncodeToString(h.Sum(nil))
}

const shareInfo = "gohsm custodian share v1"

var curveNames = map[string]ecdh.Curve{"X25519": ecdh.X25519(), "P-256": ecdh.P256(), "P-384": ecdh.P384(), "P-521": ecdh.P521()}

func curveName(c ecdh.Curve) string {
	for n, cc := range curveNames {
		if cc == c {
			return n
		}
	}
	return ""
}

// RecipientID is the 8-byte id a share records for its custodian's key.
func RecipientID(pub *ecdh.PublicKey) string {
	h := sha256.Sum256(pub.Bytes())
	return hex.EncodeToString(h[:8])
}

func shareAEAD(secret, epk, rpub []byte) (cipher.AEAD, error) {
	info := append(append([]byte(shareInfo), epk...), rpub...)
	key := kdf(secret, nil, string(info), 32)
	defer clear(key)
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal encrypts value to a custodian's key; the share's public fields are
// the AEAD's additional data.
func (s *Share) seal(value []byte, to *ecdh.PublicKey) error {
	name := curveName(to.Curve())
	if name == "" {
		return errors.New("unsupported custodian key curve")
	}
	eph, err := to.Curve().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	secret, err := eph.ECDH(to)
	if err != nil {
		return err
	}
	defer clear(secret)
	epk := eph.PublicKey().Bytes()
	aead, err := shareAEAD(secret, epk, to.Bytes())
	if err != nil {
		return err
	}
	s.Curve, s.EPK, s.Recipient = name, hex.EncodeToString(epk), RecipientID(to)
	nonce := make([]byte, aead.NonceSize()) // one key per share: a fixed nonce is safe
	s.Sealed = hex.EncodeToString(aead.Seal(nil, nonce, value, s.ad()))
	return nil
}

func (s *Share) ad() []byte {
	return fmt.Appendf(nil, "%s|%d|%d|%d|%s|%s", s.Device, s.Index, s.Threshold, s.Shares, s.Curve, s.Recipient)
}

// Open returns the share's value: the plain value, or the sealed one
// decrypted with the custodian's private key.
func (s *Share) Open(id *ecdh.PrivateKey) ([]byte, error) {
	if !s.Encrypted() {
		v, err := hex.DecodeString(s.Value)
		if err != nil {
			return nil, ErrShareCorrupted
		}
		return v, nil
	}
	if id == nil {
		return nil, fmt.Errorf("share %d is encrypted to a custodian key (id %s): give its private key", s.Index, s.Recipient)
	}
	if curveNames[s.Curve] != id.Curve() || RecipientID(id.PublicKey()) != s.Recipient {
		return nil, fmt.Errorf("share %d is encrypted to another custodian key (id %s)", s.Index, s.Recipient)
	}
	epkb, err1 := hex.DecodeString(s.EPK)
	ct, err2 := hex.DecodeString(s.Sealed)
	if err1 != nil || err2 != nil {
		return nil, ErrShareCorrupted
	}
	epk, err := id.Curve().NewPublicKey(epkb)
	if err != nil {
		return nil, ErrShareCorrupted
	}
	secret, err := id.ECDH(epk)
	if err != nil {
		return nil, ErrShareCorrupted
	}
	defer clear(secret)
	aead, err := shareAEAD(secret, epkb, id.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	v, err := aead.Open(nil, make([]byte, aead.NonceSize()), ct, s.ad())
	if err != nil {
		return nil, fmt.Errorf("%w: it does not decrypt", ErrShareCorrupted)
	}
	return v, nil
}
