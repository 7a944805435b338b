package transit

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// aadDomain starts every non-empty AAD, so the binding is this engine's
// and cannot collide with another use of the key.
const aadDomain = "gohsm-transit/v1\x00"

// aadOf binds context and associated_data as the AEAD's associated data
// (for RSA, the OAEP label): a ciphertext opens only with both exactly as
// given when it was made. The encoding is injective: the context's length
// comes first. Neither given: no AAD, as Vault.
func aadOf(context, ad []byte) []byte {
	if len(context) == 0 && len(ad) == 0 {
		return nil
	}
	b := make([]byte, 0, len(aadDomain)+4+len(context)+len(ad))
	b = append(b, aadDomain...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(context)))
	b = append(b, context...)
	return append(b, ad...)
}

// aadFields decodes an item's context and associated_data and checks a
// derived ring's rule (context required).
func aadFields(rg *ring, context, ad string) ([]byte, *Error) {
	c, err := b64("context", context)
	if err != nil {
		return nil, err
	}
	a, err := b64("associated_data", ad)
	if err != nil {
		return nil, err
	}
	if rg.Derived && len(c) == 0 {
		return nil, badRequest("missing context: key %q was created derived, so every request must carry its context", rg.Name)
	}
	return aadOf(c, a), nil
}

// object finds a key version's object on the session's token.
func object(find finder, ver *version, suffix string) (ck.ObjectHandle, error) {
	h, err := find(ver.id(suffix))
	if err != nil && !token.DeviceFailure(err) {
		return 0, &Error{Status: http.StatusInternalServerError, Msg: "a key version's token object is missing: " + internalMsg(err)}
	}
	return h, err
}

var oaep = func(label []byte) ck.Mechanism {
	return ck.Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Param: &ck.RSAOAEPParams{
		HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED, SourceData: label}}
}

// seal encrypts pt under version v and returns the versioned ciphertext.
func (e *Engine) seal(s token.Session, find finder, kt *keyType, v int, ver *version, pt, aad []byte) (string, error) {
	var calls [1]token.Call
	if err := sealCall(find, kt, ver, pt, aad, &calls[0]); err != nil {
		return "", err
	}
	token.Many(s, calls[:])
	return e.sealed(kt, v, &calls[0])
}

// sealCall makes seal's token call in c (for runMany).
func sealCall(find finder, kt *keyType, ver *version, pt, aad []byte, c *token.Call) error {
	switch kt.kind {
	case kindAEAD:
		h, err := object(find, ver, objKey)
		if err != nil {
			return err
		}
		*c = token.Call{Kind: token.CallSeal, Mech: ck.Mechanism{Type: kt.aead[0]}, Key: h, In: pt, AAD: aad}
		return nil
	case kindRSA:
		h, err := object(find, ver, objPub)
		if err != nil {
			return err
		}
		*c = token.Call{Kind: token.CallEncrypt, Mech: oaep(aad), Key: h, In: pt}
		return nil
	}
	return badRequest("key type %s does not support encryption", kt.name)
}

// sealed is the versioned ciphertext of sealCall's call, once made.
func (e *Engine) sealed(kt *keyType, v int, c *token.Call) (string, error) {
	if c.Err != nil {
		if c.Kind == token.CallEncrypt && token.RV(c.Err) == ck.CKR_DATA_LEN_RANGE {
			return "", badRequest("plaintext of %d bytes is too long for %s OAEP encryption", len(c.In), kt.name)
		}
		return "", tokenErr(c.Err, "encryption failed")
	}
	return e.format64(v, c.Out), nil
}

// open decrypts a versioned ciphertext: the caller's buffer, to zeroise.
func (e *Engine) open(s token.Session, find finder, rg *ring, kt *keyType, ciphertext string, aad []byte) ([]byte, error) {
	v, payload, perr := parseVersioned(e.prefix, ciphertext, "ciphertext")
	if perr != nil {
		return nil, perr
	}
	ver, verr := rg.versionForOpen(v, "ciphertext")
	if verr != nil {
		return nil, verr
	}
	ct, berr := b64("ciphertext", payload)
	if berr != nil {
		return nil, berr
	}
	const authFailed = "invalid ciphertext: message authentication failed (the ciphertext was altered, or the context or associated_data differ from encryption's)"
	switch kt.kind {
	case kindAEAD:
		h, err := object(find, ver, objKey)
		if err != nil {
			return nil, err
		}
		pt, err := s.Open(nil, kt.aead[0], h, aad, ct)
		if err != nil {
			return nil, tokenErr(err, authFailed)
		}
		return pt, nil
	case kindRSA:
		h, err := object(find, ver, objKey)
		if err != nil {
			return nil, err
		}
		pt, err := s.Decrypt(oaep(aad), h, ct)
		if err != nil {
			return nil, tokenErr(err, "invalid ciphertext: OAEP decryption failed (altered ciphertext, or a different context or associated_data)")
		}
		return pt, nil
	}
	return nil, badRequest("key type %s does not support decryption", kt.name)
}

// encRing is the ring for an encrypt-like call, with its type, refusing
// a type that cannot encrypt.
func (e *Engine) encRing(name string) (*ring, *keyType, error) {
	rg, err := e.ring(name)
	if err != nil {
		return nil, nil, inOp(err)
	}
	kt, kerr := e.keyType(rg.Type)
	if kerr != nil {
		return nil, nil, kerr
	}
	if !kt.supportsEncryption {
		return nil, nil, badRequest("key %q is of type %s, which does not support encryption", name, kt.name)
	}
	return rg, kt, nil
}

func itemVersion(item, req Int) int {
	if item != 0 {
		return int(item)
	}
	return int(req)
}

func refuseNonce(n string) *Error {
	if n != "" {
		return badRequest("nonce is not accepted: the token makes every nonce (convergent encryption is not supported)")
	}
	return nil
}

// Encrypt encrypts plaintext (or each batch item) under the latest
// version (or key_version). A missing key is created first (type from
// the request), as Vault's upsert.
func (e *Engine) Encrypt(ctx context.Context, name string, r *EncryptRequest) (*EncryptResponse, error) {
	if r == nil {
		return nil, badRequest("empty request")
	}
	batch, berr := e.batchLen(len(r.BatchInput), r.BatchInput != nil)
	if berr != nil {
		return nil, berr
	}
	items := r.BatchInput
	if !batch {
		items = []EncryptItem{r.EncryptItem}
	}
	_, err := e.ring(name)
	var te *Error
	if errors.As(err, &te) && te.Status == http.StatusNotFound {
		if r.ConvergentEncryption {
			return nil, badRequest("convergent_encryption is not supported: the token makes every nonce")
		}
		if err := beforeChange(ctx); err != nil {
			return nil, err
		}
		if _, err := e.CreateKey(ctx, name, &CreateKeyRequest{Type: r.Type}); err != nil {
			return nil, err
		}
	}
	rg, kt, err := e.encRing(name)
	if err != nil {
		return nil, err
	}
	out := make([]EncryptResult, len(items))
	errs := e.runMany(ctx, len(items), func(i int, find finder, c *token.Call) error {
		it := &items[i]
		if err := refuseNonce(it.Nonce); err != nil {
			return err
		}
		v, ver, verr := rg.versionFor(itemVersion(it.KeyVersion, r.KeyVersion), "encryption")
		if verr != nil {
			return verr
		}
		aad, aerr := aadFields(rg, it.Context, it.AssociatedData)
		if aerr != nil {
			return aerr
		}
		pt, perr := b64("plaintext", it.Plaintext)
		if perr != nil {
			return perr
		}
		if err := sealCall(find, kt, ver, pt, aad, c); err != nil {
			clear(pt)
			return err
		}
		out[i].KeyVersion = v
		return nil
	}, func(i int, c *token.Call) error {
		ct, err := e.sealed(kt, out[i].KeyVersion, c)
		out[i].Ciphertext = ct
		return err
	}, true)
	if !batch {
		if errs[0] != nil {
			return nil, errs[0]
		}
		return &EncryptResponse{Batch: Batch{Items: 1, BatchStatus: http.StatusOK}, Ciphertext: out[0].Ciphertext, KeyVersion: out[0].KeyVersion}, nil
	}
	for i := range out {
		out[i].Reference = items[i].Reference
		if errs[i] != nil {
			out[i] = EncryptResult{Reference: items[i].Reference, Error: errMsg(errs[i])}
		}
	}
	return &EncryptResponse{Batch: batchStatus(errs, r.PartialFailureResponseCode), BatchResults: out}, nil
}

// Decrypt decrypts a ciphertext (or each batch item).
func (e *Engine) Decrypt(ctx context.Context, name string, r *DecryptRequest) (*DecryptResponse, error) {
	if r == nil {
		return nil, badRequest("empty request")
	}
	batch, berr := e.batchLen(len(r.BatchInput), r.BatchInput != nil)
	if berr != nil {
		return nil, berr
	}
	items := r.BatchInput
	if !batch {
		items = []DecryptItem{r.DecryptItem}
	}
	rg, kt, err := e.encRing(name)
	if err != nil {
		return nil, err
	}
	if rg, err = e.fresh(rg, func(y func(string) bool) {
		for i := range items {
			if !y(items[i].Ciphertext) {
				return
			}
		}
	}); err != nil {
		return nil, err
	}
	out := make([]DecryptResult, len(items))
	errs := e.run(ctx, len(items), func(i int, s token.Session, find finder) error {
		it := &items[i]
		if err := refuseNonce(it.Nonce); err != nil {
			return err
		}
		aad, aerr := aadFields(rg, it.Context, it.AssociatedData)
		if aerr != nil {
			return aerr
		}
		pt, err := e.open(s, find, rg, kt, it.Ciphertext, aad)
		if err != nil {
			return err
		}
		p := enc64(pt)
		clear(pt)
		out[i] = DecryptResult{Plaintext: &p}
		return nil
	})
	if !batch {
		if errs[0] != nil {
			return nil, errs[0]
		}
		return &DecryptResponse{Batch: Batch{Items: 1, BatchStatus: http.StatusOK}, Plaintext: out[0].Plaintext}, nil
	}
	for i := range out {
		out[i].Reference = items[i].Reference
		if errs[i] != nil {
			out[i] = DecryptResult{Reference: items[i].Reference, Error: errMsg(errs[i])}
		}
	}
	return &DecryptResponse{Batch: batchStatus(errs, r.PartialFailureResponseCode), BatchResults: out}, nil
}

// Rewrap decrypts and encrypts again under the latest version (or
// key_version) inside the engine: the plaintext never leaves it.
func (e *Engine) Rewrap(ctx context.Context, name string, r *RewrapRequest) (*RewrapResponse, error) {
	if r == nil {
		return nil, badRequest("empty request")
	}
	batch, berr := e.batchLen(len(r.BatchInput), r.BatchInput != nil)
	if berr != nil {
		return nil, berr
	}
	items := r.BatchInput
	if !batch {
		items = []RewrapItem{r.RewrapItem}
	}
	rg, kt, err := e.encRing(name)
	if err != nil {
		return nil, err
	}
	if rg, err = e.fresh(rg, func(y func(string) bool) {
		for i := range items {
			if !y(items[i].Ciphertext) {
				return
			}
		}
	}); err != nil {
		return nil, err
	}
	out := make([]EncryptResult, len(items))
	errs := e.run(ctx, len(items), func(i int, s token.Session, find finder) error {
		it := &items[i]
		if err := refuseNonce(it.Nonce); err != nil {
			return err
		}
		v, ver, verr := rg.versionFor(itemVersion(it.KeyVersion, r.KeyVersion), "encryption")
		if verr != nil {
			return verr
		}
		aad, aerr := aadFields(rg, it.Context, it.AssociatedData)
		if aerr != nil {
			return aerr
		}
		pt, err := e.open(s, find, rg, kt, it.Ciphertext, aad)
		if err != nil {
			return err
		}
		ct, err := e.seal(s, find, kt, v, ver, pt, aad)
		clear(pt)
		if err != nil {
			return err
		}
		out[i] = EncryptResult{Ciphertext: ct, KeyVersion: v}
		return nil
	})
	if !batch {
		if errs[0] != nil {
			return nil, errs[0]
		}
		return &RewrapResponse{Batch: Batch{Items: 1, BatchStatus: http.StatusOK}, Ciphertext: out[0].Ciphertext, KeyVersion: out[0].KeyVersion}, nil
	}
	for i := range out {
		out[i].Reference = items[i].Reference
		if errs[i] != nil {
			out[i] = EncryptResult{Reference: items[i].Reference, Error: errMsg(errs[i])}
		}
	}
	return &RewrapResponse{Batch: batchStatus(errs, r.PartialFailureResponseCode), BatchResults: out}, nil
}

// DataKey makes a random data key of bits bits on the token, encrypted
// under the key; with plaintext, the key itself too (datakey/plaintext;
// datakey/wrapped omits it, so a policy can allow only that path).
func (e *Engine) DataKey(ctx context.Context, name string, plaintext bool, r *DataKeyRequest) (*DataKeyResponse, error) {
	if r == nil {
		r = &DataKeyRequest{}
	}
	bits := int(r.Bits)
	if bits == 0 {
		bits = 256
	}
	if bits != 128 && bits != 256 && bits != 512 {
		return nil, badRequest("invalid bits %d: data keys are 128, 256 or 512 bits", bits)
	}
	if err := refuseNonce(r.Nonce); err != nil {
		return nil, err
	}
	rg, kt, err := e.encRing(name)
	if err != nil {
		return nil, err
	}
	var out DataKeyResponse
	errs := e.run(ctx, 1, func(_ int, s token.Session, find finder) error {
		v, ver, verr := rg.versionFor(int(r.KeyVersion), "encryption")
		if verr != nil {
			return verr
		}
		aad, aerr := aadFields(rg, r.Context, r.AssociatedData)
		if aerr != nil {
			return aerr
		}
		dk, err := s.Random(bits / 8)
		if err != nil {
			return err
		}
		defer clear(dk)
		ct, err := e.seal(s, find, kt, v, ver, dk, aad)
		if err != nil {
			return err
		}
		out = DataKeyResponse{Ciphertext: ct, KeyVersion: v}
		if plaintext {
			out.Plaintext = enc64(dk)
		}
		return nil
	})
	if errs[0] != nil {
		return nil, errs[0]
	}
	return &out, nil
}
