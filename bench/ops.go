package bench

// Op describes one benchmarked operation. What it does on a module lives in
// p11ops.go, on the Go libraries in raw.go.
type Op struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Mechanism as PKCS#11 names it (for the report).
	Mechanism string `json:"mechanism"`
	// Bytes processed per op (0 for fixed-size ops such as signing a digest);
	// the report derives MB/s from it.
	Bytes int `json:"bytes,omitempty"`
	// SM ops run only on modules that list the docs/sm-codes.json codes.
	SM bool `json:"sm,omitempty"`
}

// ops is the catalogue, in report order.
var ops = []Op{
	{Name: "rsa2048-pkcs1-sign", Title: "RSA-2048 sign, PKCS#1 v1.5 SHA-256", Mechanism: "CKM_SHA256_RSA_PKCS"},
	{Name: "rsa2048-pss-sign", Title: "RSA-2048 sign, PSS SHA-256", Mechanism: "CKM_SHA256_RSA_PKCS_PSS"},
	{Name: "rsa2048-pkcs1-verify", Title: "RSA-2048 verify, PKCS#1 v1.5 SHA-256", Mechanism: "CKM_SHA256_RSA_PKCS"},
	{Name: "rsa2048-pss-verify", Title: "RSA-2048 verify, PSS SHA-256", Mechanism: "CKM_SHA256_RSA_PKCS_PSS"},
	{Name: "rsa3072-pkcs1-sign", Title: "RSA-3072 sign, PKCS#1 v1.5 SHA-256", Mechanism: "CKM_SHA256_RSA_PKCS"},
	{Name: "rsa4096-pkcs1-sign", Title: "RSA-4096 sign, PKCS#1 v1.5 SHA-256", Mechanism: "CKM_SHA256_RSA_PKCS"},
	{Name: "rsa2048-oaep-dec", Title: "RSA-2048 decrypt, OAEP SHA-1 (32-byte message)", Mechanism: "CKM_RSA_PKCS_OAEP"},
	{Name: "rsa2048-x509-dec", Title: "RSA-2048 raw private-key operation (CKM_RSA_X_509 decrypt)", Mechanism: "CKM_RSA_X_509"},
	{Name: "ecdsa-p256-sign", Title: "ECDSA P-256 sign (32-byte digest)", Mechanism: "CKM_ECDSA"},
	{Name: "ecdsa-p256-verify", Title: "ECDSA P-256 verify (32-byte digest)", Mechanism: "CKM_ECDSA"},
	{Name: "ecdsa-p256-sha256-sign", Title: "ECDSA P-256 sign with SHA-256", Mechanism: "CKM_ECDSA_SHA256"},
	{Name: "ed25519-sign", Title: "Ed25519 sign (32-byte message)", Mechanism: "CKM_EDDSA"},
	{Name: "mldsa65-sign", Title: "ML-DSA-65 sign (hedged, empty context)", Mechanism: "CKM_ML_DSA"},
	{Name: "mlkem768-encaps", Title: "ML-KEM-768 encapsulate to a session AES-256 key (destroy included)", Mechanism: "CKM_ML_KEM"},
	{Name: "aes256-gcm-enc-64", Title: "AES-256-GCM encrypt 64 B", Mechanism: "CKM_AES_GCM", Bytes: 64},
	{Name: "aes256-gcm-enc-4k", Title: "AES-256-GCM encrypt 4 KiB", Mechanism: "CKM_AES_GCM", Bytes: 4096},
	{Name: "aes256-gcm-enc-1m", Title: "AES-256-GCM encrypt 1 MiB", Mechanism: "CKM_AES_GCM", Bytes: 1 << 20},
	{Name: "aes256-cbc-enc-4k", Title: "AES-256-CBC encrypt 4 KiB", Mechanism: "CKM_AES_CBC", Bytes: 4096},
	{Name: "sha256-1m", Title: "SHA-256 digest 1 MiB", Mechanism: "CKM_SHA256", Bytes: 1 << 20},
	{Name: "hmac-sha256-4k", Title: "HMAC-SHA256 4 KiB", Mechanism: "CKM_SHA256_HMAC", Bytes: 4096},
	{Name: "random-32", Title: "C_GenerateRandom 32 B", Mechanism: "C_GenerateRandom", Bytes: 32},
	{Name: "keygen-aes256", Title: "Key generation AES-256", Mechanism: "CKM_AES_KEY_GEN"},
	{Name: "keygen-ec-p256", Title: "Key pair generation EC P-256", Mechanism: "CKM_EC_KEY_PAIR_GEN"},
	{Name: "keygen-rsa2048", Title: "Key pair generation RSA-2048", Mechanism: "CKM_RSA_PKCS_KEY_PAIR_GEN"},
	{Name: "find-label", Title: "C_FindObjects: one label among N session objects", Mechanism: "C_FindObjects"},
	{Name: "sm2-sign", Title: "SM2 sign with SM3 (default user ID)", Mechanism: "CKM_SM3_SM2", SM: true},
	{Name: "sm2-verify", Title: "SM2 verify with SM3 (default user ID)", Mechanism: "CKM_SM3_SM2", SM: true},
	{Name: "sm4-cbc-enc-4k", Title: "SM4-CBC encrypt 4 KiB", Mechanism: "CKM_SM4_CBC", Bytes: 4096, SM: true},
}

// Ops returns the catalogue in report order.
func Ops() []Op { return append([]Op(nil), ops...) }

// OpNames lists the op names in report order.
func OpNames() []string {
	n := make([]string, len(ops))
	for i, o := range ops {
		n[i] = o.Name
	}
	return n
}

func opByName(name string) *Op {
	for i := range ops {
		if ops[i].Name == name {
			return &ops[i]
		}
	}
	return nil
}

// Goal is a performance target from the engine issue: module A must reach
// Min times the reference's ops/s on Op at Threads (0: at every thread
// count). The reference is module B, or the Go libraries when Ref is
// RawName: for ops SoftHSMv2 lacks, what the C ABI may cost is the target.
type Goal struct {
	Op      string  `json:"op"`
	Threads int     `json:"threads"`
	Min     float64 `json:"min"`
	Ref     string  `json:"ref,omitempty"` // "" (module B) or RawName
}

// reference names the target g compares A with.
func (g Goal) reference(b string) string {
	if g.Ref != "" {
		return g.Ref
	}
	return b
}

// Goals are the engine issue's targets: gohsm against SoftHSMv2, and
// against raw Go for the PKCS#11 3.x ops.
var Goals = []Goal{
	{Op: "ecdsa-p256-sign", Threads: 1, Min: 1.4},
	{Op: "ecdsa-p256-sign", Threads: 2, Min: 2},
	{Op: "aes256-gcm-enc-64", Threads: 0, Min: 4},
	{Op: "rsa2048-pkcs1-sign", Threads: 1, Min: 0.8},
	{Op: "rsa2048-pkcs1-sign", Threads: 2, Min: 1.15},
	// Issue 15 (hsm/mech/rsaz, docs/rsaz.md): RSA on the IFMA path.
	{Op: "rsa2048-pkcs1-sign", Threads: 1, Min: 2},
	{Op: "rsa2048-pkcs1-sign", Threads: 2, Min: 2},
	{Op: "rsa2048-pss-sign", Threads: 1, Min: 2},
	{Op: "rsa2048-pss-sign", Threads: 2, Min: 2},
	{Op: "rsa3072-pkcs1-sign", Threads: 0, Min: 1.5},
	{Op: "rsa4096-pkcs1-sign", Threads: 0, Min: 1.5},
	{Op: "rsa2048-oaep-dec", Threads: 0, Min: 2},
	{Op: "find-label", Threads: 0, Min: 100},
	{Op: "ed25519-sign", Threads: 0, Min: 0.8, Ref: RawName},
	{Op: "mldsa65-sign", Threads: 0, Min: 0.8, Ref: RawName},
	{Op: "mlkem768-encaps", Threads: 0, Min: 0.8, Ref: RawName},
}
