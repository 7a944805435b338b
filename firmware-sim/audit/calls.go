package audit

// The audit policy is these two tables: every hsm.Backend method is in
// exactly one of them (TestCallTablesCoverBackend), so a method added to the
// interface fails the tests until someone decides. Wrap's overrides are the
// audited methods, and each one names its table row (audit panics on a
// method missing here; TestWrapAuditsEveryTableEntry drives every row).

// audited are the calls Wrap writes to the log (as "C_"+Method), intent
// and result.
var audited = []struct{ Method, Why string }{
	{"Initialize", "starts the engine"},
	{"Finalize", "stops the engine: closes every session, logs every token out"},
	{"InitToken", "erases a token and sets its SO PIN and label"},
	{"InitPIN", "sets (or resets after a lockout) the user PIN"},
	{"SetPIN", "changes a PIN; a wrong old PIN counts against the retry counter"},
	{"OpenSession", "a session is the handle of every later call"},
	{"CloseSession", "ends a session, and with the token's last one its login"},
	{"CloseAllSessions", "ends every session of a slot, and its login"},
	{"Login", "every attempt: a failed one is what an audit is for (its rv), and it counts against the PIN"},
	{"LoginUser", "as Login (PKCS#11 3.0, with a user name)"},
	{"Logout", "ends a login"},
	{"CreateObject", "makes an object, or imports a key"},
	{"CopyObject", "makes an object, possibly with other attributes"},
	{"DestroyObject", "removes an object"},
	{"SetAttributeValue", "changes an object (usage flags, sensitivity, labels)"},
	{"GenerateKey", "makes a key"},
	{"GenerateKeyPair", "makes a key pair"},
	{"WrapKey", "a key leaves the token (encrypted, but it leaves)"},
	{"UnwrapKey", "makes a key from outside"},
	{"DeriveKey", "makes a key"},
	{"EncapsulateKey", "makes a key (KEM)"},
	{"DecapsulateKey", "makes a key (KEM)"},
}

const (
	whyRead    = "reads state; changes nothing"
	whyOp      = "a cryptographic operation with a key that exists: not audited for volume (the key's creation, import, attribute changes and export are)"
	whyOpState = "the session's own operation state (cancel, save, restore an operation): no token, object or login state"
)

// notAudited are the other methods, each with the reason.
var notAudited = []struct{ Method, Why string }{
	{"GetInfo", whyRead},
	{"GetSlotList", whyRead},
	{"GetSlotInfo", whyRead},
	{"GetTokenInfo", whyRead},
	{"GetMechanismList", whyRead},
	{"GetMechanismInfo", whyRead},
	{"GetSessionInfo", whyRead},
	{"GetObjectSize", whyRead},
	{"GetAttributeValue", whyRead + " (a sensitive value never leaves by it)"},
	{"FindObjectsInit", whyRead + " (the search state is the session's)"},
	{"FindObjects", whyRead},
	{"FindObjectsFinal", whyRead},
	{"WaitForSlotEvent", whyRead},
	{"GetFunctionStatus", whyRead + " (a legacy call)"},
	{"MessageSignMechanism", whyRead},
	{"GetSessionValidationFlags", whyRead},

	{"SeedRandom", "mixes caller bytes into the RNG, which cannot lower its entropy; no token, object or login state"},
	{"GenerateRandom", "output of the RNG; no token, object or login state"},

	{"CancelFunction", whyOpState},
	{"SessionCancel", whyOpState},
	{"GetOperationState", whyOpState},
	{"SetOperationState", whyOpState},

	{"EncryptInit", whyOp}, {"Encrypt", whyOp}, {"EncryptUpdate", whyOp}, {"EncryptFinal", whyOp},
	{"DecryptInit", whyOp}, {"Decrypt", whyOp}, {"DecryptUpdate", whyOp}, {"DecryptFinal", whyOp},
	{"DigestInit", whyOp}, {"Digest", whyOp}, {"DigestUpdate", whyOp}, {"DigestKey", whyOp}, {"DigestFinal", whyOp},
	{"SignInit", whyOp}, {"Sign", whyOp}, {"SignUpdate", whyOp}, {"SignFinal", whyOp},
	{"SignRecoverInit", whyOp}, {"SignRecover", whyOp},
	{"VerifyInit", whyOp}, {"Verify", whyOp}, {"VerifyUpdate", whyOp}, {"VerifyFinal", whyOp},
	{"VerifyRecoverInit", whyOp}, {"VerifyRecover", whyOp},
	{"DigestEncryptUpdate", whyOp}, {"DecryptDigestUpdate", whyOp},
	{"SignEncryptUpdate", whyOp}, {"DecryptVerifyUpdate", whyOp},
	{"MessageEncryptInit", whyOp}, {"EncryptMessage", whyOp}, {"EncryptMessageBegin", whyOp},
	{"EncryptMessageNext", whyOp}, {"MessageEncryptFinal", whyOp},
	{"MessageDecryptInit", whyOp}, {"DecryptMessage", whyOp}, {"DecryptMessageBegin", whyOp},
	{"DecryptMessageNext", whyOp}, {"MessageDecryptFinal", whyOp},
	{"MessageSignInit", whyOp}, {"SignMessage", whyOp}, {"SignMessageBegin", whyOp},
	{"SignMessageNext", whyOp}, {"MessageSignFinal", whyOp},
	{"MessageVerifyInit", whyOp}, {"VerifyMessage", whyOp}, {"VerifyMessageBegin", whyOp},
	{"VerifyMessageNext", whyOp}, {"MessageVerifyFinal", whyOp},
	{"VerifySignatureInit", whyOp}, {"VerifySignature", whyOp},
	{"VerifySignatureUpdate", whyOp}, {"VerifySignatureFinal", whyOp},
}

var auditedSet = func() map[string]bool {
	m := make(map[string]bool, len(audited))
	for _, c := range audited {
		m[c.Method] = true
	}
	return m
}()

// AuditedCalls returns the PKCS#11 names of the calls Wrap audits, in the
// table's order.
func AuditedCalls() []string {
	out := make([]string, len(audited))
	for i, c := range audited {
		out[i] = "C_" + c.Method
	}
	return out
}
