package device

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/gohsm/gohsm/firmware-sim/device/selftest"
)

// A firmware image is a manifest signed with Ed25519 by a firmware signing
// key:
//
//	{"manifest": {...}, "signer": HEX(public key), "signature": HEX}
//
// The signature is over "gohsm firmware manifest v1\x00" followed by the
// manifest's compact JSON (json.Compact of the bytes in the file: white
// space is all it removes, so nothing is decoded and re-encoded before the
// check). The device pins one signer
// at its ceremony and accepts only images that key signed, with a
// security version number (SVN) not below its minimum; installing raises
// the minimum to the image's SVN, so an older, vulnerable build can never
// come back (rollback), and the manifest's digests are what the boot
// integrity self-test checks the running binary against.

// Manifest describes one build.
type Manifest struct {
	Format  int    `json:"format"`
	Version string `json:"version"` // the running version hsm.Version reports, e.g. "0.1"
	SVN     uint32 `json:"svn"`
	// Files maps a role ("gohsm": the appliance binary, "libgohsm.so": the
	// module) to the SHA-256 of that file, hex.
	Files map[string]string `json:"files"`
	// Algorithms are the self-tests (algorithm families) the build
	// enables; every one must be a self-test this build runs.
	Algorithms []string `json:"algorithms"`
	Created    string   `json:"created,omitempty"`
}

// Image is a signed manifest, the file `gohsm firmware sign` writes.
type Image struct {
	Manifest  json.RawMessage `json:"manifest"`
	Signer    string          `json:"signer"`
	Signature string          `json:"signature"`
}

// Roles of Manifest.Files.
const (
	RoleBinary  = "gohsm"
	RoleLibrary = "libgohsm.so"
)

const firmwareContext = "gohsm firmware manifest v1\x00"

// Firmware errors.
var (
	ErrBadSignature = errors.New("firmware image: bad signature (the manifest was changed after signing, or the signature is damaged)")
	ErrWrongSigner  = errors.New("firmware image: signed by a key this device does not trust")
	ErrRollback     = errors.New("firmware image: security version below the device's minimum (rollback refused)")
	ErrNoSigner     = errors.New("the device pins no firmware signer (gohsm device init --firmware-signer): no image can be installed")
)

// FileDigest is the SHA-256 of a file, hex.
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// SignImage signs m with key.
func SignImage(m *Manifest, key ed25519.PrivateKey) (*Image, error) {
	if m.Format == 0 {
		m.Format = 1
	}
	if len(m.Algorithms) == 0 {
		m.Algorithms = selftest.Names()
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(key, append([]byte(firmwareContext), b...))
	return &Image{Manifest: b, Signer: hex.EncodeToString(key.Public().(ed25519.PublicKey)), Signature: hex.EncodeToString(sig)}, nil
}

func (m *Manifest) check() error {
	if m.Format != 1 {
		return fmt.Errorf("firmware manifest: format %d", m.Format)
	}
	if m.Version == "" {
		return errors.New("firmware manifest: no version")
	}
	if len(m.Files) == 0 {
		return errors.New("firmware manifest: no file digests")
	}
	for role, d := range m.Files {
		if b, err := hex.DecodeString(d); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("firmware manifest: %s: not a SHA-256 digest", role)
		}
	}
	names := selftest.Names()
	for _, a := range m.Algorithms {
		if !slices.Contains(names, a) {
			return fmt.Errorf("firmware manifest: algorithm %q is no self-test of this build (gohsm selftest --list)", a)
		}
	}
	return nil
}

// ParseImage reads an image file's bytes.
func ParseImage(b []byte) (*Image, error) {
	var im Image
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&im); err != nil {
		return nil, fmt.Errorf("firmware image: %w", err)
	}
	return &im, nil
}

// Marshal is the image file's text.
func (im *Image) Marshal() []byte {
	b, _ := json.MarshalIndent(im, "", " ")
	return append(b, '\n')
}

// Verify checks the image against the pinned signer and the minimum SVN
// and returns its manifest. pinned nil checks the signature against the
// key the image names (gohsm firmware verify without a device).
func (im *Image) Verify(pinned ed25519.PublicKey, minSVN uint32) (*Manifest, error) {
	signer, err := hex.DecodeString(im.Signer)
	if err != nil || len(signer) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("firmware image: bad signer field")
	}
	if pinned != nil && !bytes.Equal(signer, pinned) {
		return nil, fmt.Errorf("%w (image signer %s, device pins %s)", ErrWrongSigner, KeyID(signer), KeyID(pinned))
	}
	key := ed25519.PublicKey(signer)
	if pinned != nil {
		key = pinned
	}
	// The signature is over the manifest's compact JSON: an image file may
	// be re-indented, its manifest's meaning may not change.
	var compact bytes.Buffer
	if err := json.Compact(&compact, im.Manifest); err != nil {
		return nil, ErrBadSignature
	}
	sig, err := hex.DecodeString(im.Signature)
	if err != nil || !ed25519.Verify(key, append([]byte(firmwareContext), compact.Bytes()...), sig) {
		return nil, ErrBadSignature
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(im.Manifest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("firmware manifest: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	if m.SVN < minSVN {
		return nil, fmt.Errorf("%w: image svn %d, minimum %d", ErrRollback, m.SVN, minSVN)
	}
	return &m, nil
}

// KeyID names a public key: the first 8 bytes of its SHA-256, hex.
func KeyID(pub []byte) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// WriteSigningKey writes a new Ed25519 firmware signing key: the private
// key as PKCS#8 PEM (mode 0600) and the public key as PKIX PEM.
func WriteSigningKey(privPath, pubPath string, rnd io.Reader) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644); err != nil {
		return nil, err
	}
	return pub, nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadSigningKey reads an Ed25519 private key (PKCS#8 PEM).
func ReadSigningKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return ek, nil
}

// ReadSignerPublic reads an Ed25519 public key (PKIX PEM), or the public
// half of a private key file.
func ReadSignerPublic(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if ek, ok := k.(ed25519.PublicKey); ok {
			return ek, nil
		}
	case "PRIVATE KEY":
		k, err := ReadSigningKey(path)
		if err != nil {
			return nil, err
		}
		return k.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("%s: not an Ed25519 key", path)
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%s: no %s PEM block", path, typ)
	}
	return blk.Bytes, nil
}

// PinnedSigner returns the firmware signer a device in dir pins (its
// state's MAC checked), or an error if none.
func PinnedSigner(dir string) (ed25519.PublicKey, error) {
	d, err := Open(Options{Dir: dir, SkipSelftests: true})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.doc == nil || d.doc.Signer == "" {
		return nil, ErrNoSigner
	}
	b, err := hex.DecodeString(d.doc.Signer)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, ErrNoSigner
	}
	return b, nil
}
