package faults

import (
	"reflect"
	"sync"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

//go:generate go run ./internal/genwrap/cmd

// fn is a method of hsm.Backend: its index in backendMethods (the fn*
// constants of zwrap.go).
type fn int

func functionName(f fn) string { return "C_" + backendMethods()[f] }

// class says what a function does to a session's operations, which decides
// what an injected error ends and which mechanism a rule's "mechanism"
// compares with.
type class struct {
	// kinds are the operations the call belongs to, as C_SessionCancel
	// names them (CKF_SIGN, CKF_ENCRYPT|CKF_DIGEST for a dual function).
	kinds ck.Flags
	// init: C_*Init, which begins an operation of kinds with its mechanism.
	init bool
	// ends: an error ends the operation (single-part, Update and Final
	// calls, §5.2: the engine's rule); the decorator ends it with
	// C_SessionCancel(kinds).
	ends bool
	// msgNext: a part of a multi-part message (C_EncryptMessageNext, ...).
	// The engine ends only the message on an error; the decorator cannot
	// reach a message alone, so an injected error ends the whole
	// message-based process (documented).
	msgNext bool
	// hasMech: a mechanism argument (C_SignInit, C_GenerateKey, ...).
	hasMech bool
	// needsToken: the call needs the token in the slot it names; with the
	// token removed it answers CKR_TOKEN_NOT_PRESENT.
	needsToken bool
}

// mechanism reports whether a rule's mechanism can match the function.
func (c class) mechanism() bool { return c.hasMech || c.kinds != 0 }

// classes is the table of what each method does, by method name (a test
// checks every name is a method of hsm.Backend).
var classes = map[string]class{
	"EncryptInit": {kinds: ck.CKF_ENCRYPT, init: true}, "Encrypt": {kinds: ck.CKF_ENCRYPT, ends: true},
	"EncryptUpdate": {kinds: ck.CKF_ENCRYPT, ends: true}, "EncryptFinal": {kinds: ck.CKF_ENCRYPT, ends: true},
	"DecryptInit": {kinds: ck.CKF_DECRYPT, init: true}, "Decrypt": {kinds: ck.CKF_DECRYPT, ends: true},
	"DecryptUpdate": {kinds: ck.CKF_DECRYPT, ends: true}, "DecryptFinal": {kinds: ck.CKF_DECRYPT, ends: true},
	"DigestInit": {kinds: ck.CKF_DIGEST, init: true}, "Digest": {kinds: ck.CKF_DIGEST, ends: true},
	"DigestUpdate": {kinds: ck.CKF_DIGEST, ends: true}, "DigestKey": {kinds: ck.CKF_DIGEST, ends: true},
	"DigestFinal": {kinds: ck.CKF_DIGEST, ends: true},
	"SignInit":    {kinds: ck.CKF_SIGN, init: true}, "Sign": {kinds: ck.CKF_SIGN, ends: true},
	"SignUpdate": {kinds: ck.CKF_SIGN, ends: true}, "SignFinal": {kinds: ck.CKF_SIGN, ends: true},
	"SignRecoverInit": {kinds: ck.CKF_SIGN_RECOVER, init: true}, "SignRecover": {kinds: ck.CKF_SIGN_RECOVER, ends: true},
	"VerifyInit": {kinds: ck.CKF_VERIFY, init: true}, "Verify": {kinds: ck.CKF_VERIFY, ends: true},
	"VerifyUpdate": {kinds: ck.CKF_VERIFY, ends: true}, "VerifyFinal": {kinds: ck.CKF_VERIFY, ends: true},
	"VerifyRecoverInit": {kinds: ck.CKF_VERIFY_RECOVER, init: true}, "VerifyRecover": {kinds: ck.CKF_VERIFY_RECOVER, ends: true},
	"VerifySignatureInit": {kinds: ck.CKF_VERIFY, init: true}, "VerifySignature": {kinds: ck.CKF_VERIFY, ends: true},
	"VerifySignatureUpdate": {kinds: ck.CKF_VERIFY, ends: true}, "VerifySignatureFinal": {kinds: ck.CKF_VERIFY, ends: true},
	"DigestEncryptUpdate": {kinds: ck.CKF_DIGEST | ck.CKF_ENCRYPT, ends: true},
	"DecryptDigestUpdate": {kinds: ck.CKF_DECRYPT | ck.CKF_DIGEST, ends: true},
	"SignEncryptUpdate":   {kinds: ck.CKF_SIGN | ck.CKF_ENCRYPT, ends: true},
	"DecryptVerifyUpdate": {kinds: ck.CKF_DECRYPT | ck.CKF_VERIFY, ends: true},

	"MessageEncryptInit": {kinds: ck.CKF_MESSAGE_ENCRYPT, init: true}, "EncryptMessage": {kinds: ck.CKF_MESSAGE_ENCRYPT},
	"EncryptMessageBegin": {kinds: ck.CKF_MESSAGE_ENCRYPT}, "EncryptMessageNext": {kinds: ck.CKF_MESSAGE_ENCRYPT, msgNext: true},
	"MessageEncryptFinal": {kinds: ck.CKF_MESSAGE_ENCRYPT, ends: true},
	"MessageDecryptInit":  {kinds: ck.CKF_MESSAGE_DECRYPT, init: true}, "DecryptMessage": {kinds: ck.CKF_MESSAGE_DECRYPT},
	"DecryptMessageBegin": {kinds: ck.CKF_MESSAGE_DECRYPT}, "DecryptMessageNext": {kinds: ck.CKF_MESSAGE_DECRYPT, msgNext: true},
	"MessageDecryptFinal": {kinds: ck.CKF_MESSAGE_DECRYPT, ends: true},
	"MessageSignInit":     {kinds: ck.CKF_MESSAGE_SIGN, init: true}, "SignMessage": {kinds: ck.CKF_MESSAGE_SIGN},
	"SignMessageBegin": {kinds: ck.CKF_MESSAGE_SIGN}, "SignMessageNext": {kinds: ck.CKF_MESSAGE_SIGN, msgNext: true},
	"MessageSignFinal":  {kinds: ck.CKF_MESSAGE_SIGN, ends: true},
	"MessageVerifyInit": {kinds: ck.CKF_MESSAGE_VERIFY, init: true}, "VerifyMessage": {kinds: ck.CKF_MESSAGE_VERIFY},
	"VerifyMessageBegin": {kinds: ck.CKF_MESSAGE_VERIFY}, "VerifyMessageNext": {kinds: ck.CKF_MESSAGE_VERIFY, msgNext: true},
	"MessageVerifyFinal": {kinds: ck.CKF_MESSAGE_VERIFY, ends: true},

	"GetTokenInfo": {needsToken: true}, "GetMechanismList": {needsToken: true}, "GetMechanismInfo": {needsToken: true},
	"InitToken": {needsToken: true}, "OpenSession": {needsToken: true},
}

// fnClasses is classes by fn, with hasMech read from the method's
// parameters.
var fnClasses = sync.OnceValue(func() []class {
	t := reflect.TypeFor[hsm.Backend]()
	tm := reflect.TypeFor[ck.Mechanism]()
	out := make([]class, t.NumMethod())
	for i := range out {
		m := t.Method(i)
		c := classes[m.Name]
		for j := 0; j < m.Type.NumIn(); j++ {
			c.hasMech = c.hasMech || m.Type.In(j) == tm
		}
		out[i] = c
	}
	return out
})

func fnInfo(f fn) class { return fnClasses()[f] }
