package ck

// The SM code tables. Every value below is either gohsm's own (the "gohsm
// private" block, CKM_VENDOR_DEFINED|0x474D00 — "GM" — which no vendor table
// we found uses) or copied from a public source named next to it; none is
// guessed. docs/sm-codes.md is the human version with the same sources, and
// docs/sm-codes.json publishes DefaultProfile (TestSMCodesJSON keeps it equal;
// regenerate with `go test ./hsm/ck -run TestSMCodesJSON -update`).
//
// Names are gohsm's canonical spelling; where a vendor spells a code
// differently the vendor's name is given in the comment. Semantics are gohsm's
// (see hsm/mech/sm2.go, sm3.go, sm4.go): CKM_SM2_SIGN_RAW signs a 32-byte e
// and returns r||s; CKM_SM3_SM2 hashes Z||M with SM3 (GM/T 0009 default ID
// unless the parameter carries one); CKM_SM2_ENCRYPT is GM/T 0003 C1C3C2;
// CKM_SM4_MAC(_GENERAL) is the PKCS#11 general block-cipher MAC.
//
// Sources:
//   [xipki]  xipki/ipkcs11wrapper, src/main/resources/org/xipki/pkcs11/wrapper/vendor.conf
//            (blocks "TASS HSM", "SANSEC HSM", "Safenet Luna HSM"); the Luna block says its
//            constants come from Thales' cryptoki_v2.h.
//   [xipki-old] the same repository, src/main/resources/iaik/pkcs/pkcs11/wrapper/vendorcode.conf
//            (an older table; used only to show where sources disagree).
//
// Why the default looks like TASS: the SM2 block CKM_VENDOR_DEFINED+0x8000..
// (key pair gen 0x80008001, SM3-with-SM2 0x80008100, encrypt 0x80008200) and
// CKK_SM2 = 0x80000004, CKM_SM4_KEY_GEN/ECB/CBC = 0x80000107/108/109 are shared
// by the TASS and SANSEC tables in [xipki], i.e. they are the closest thing to
// a de facto convention among Chinese HSM vendors. Where those two disagree
// (CKK_SM4, CKM_SM3) the default follows TASS, whose table is the more complete
// one. Mechanisms no vendor table defines (HMAC-SM3, SM4-CTR, SM4-GCM) take
// values from the gohsm private block, so they can never collide with a vendor
// code that means something else.

// gohsmPrivate is the base of the codes gohsm assigns itself.
const gohsmPrivate = ULong(CKM_VENDOR_DEFINED) | 0x474D00

// DefaultProfile is the "gohsm" profile: the TASS-compatible codes plus the
// gohsm private block.
var DefaultProfile = &Profile{
	Name:        "gohsm",
	Description: "gohsm default: TASS/SANSEC-compatible SM2 and SM4 codes, TASS CKK_SM4/CKM_SM3, gohsm private block for HMAC-SM3, SM4-CTR and SM4-GCM",
	Codes: map[string]ULong{
		"CKK_SM2":              0x80000004, // [xipki] TASS and SANSEC
		"CKK_SM4":              0x80000002, // [xipki] TASS
		"CKM_SM2_KEY_PAIR_GEN": 0x80008001, // [xipki] TASS and SANSEC
		"CKM_SM2_SIGN_RAW":     0x80008000, // [xipki] TASS CKM_VENDOR_SM2 (#CKM_SM2)
		"CKM_SM3_SM2":          0x80008100, // [xipki] TASS and SANSEC
		"CKM_SM2_ENCRYPT":      0x80008200, // [xipki] TASS and SANSEC CKM_SM2_RAW
		"CKM_SM3":              0x80000005, // [xipki] TASS
		"CKM_SM4_KEY_GEN":      0x80000107, // [xipki] TASS and SANSEC
		"CKM_SM4_ECB":          0x80000108, // [xipki] TASS and SANSEC
		"CKM_SM4_CBC":          0x80000109, // [xipki] TASS and SANSEC
		"CKM_SM4_MAC":          0x8000010A, // [xipki] TASS
		"CKM_SM4_MAC_GENERAL":  0x8000010B, // [xipki] TASS
		"CKM_SM4_CBC_PAD":      0x8000010C, // [xipki] TASS
		"CKM_SM3_HMAC":         gohsmPrivate + 0x01,
		"CKM_SM3_HMAC_GENERAL": gohsmPrivate + 0x02,
		"CKM_SM4_CTR":          gohsmPrivate + 0x03,
		"CKM_SM4_GCM":          gohsmPrivate + 0x04,
	},
}

// TASSProfile is TASS (江南天安) as recorded in [xipki] "TASS HSM". xipki
// notes TASS returns SM2 signatures DER-encoded; gohsm always returns r||s,
// so a TASS application that parses DER needs the "gohsm" signature format
// documented in docs/sm-codes.md.
var TASSProfile = &Profile{
	Name:        "tass",
	Description: "TASS HSM codes as recorded by xipki/ipkcs11wrapper vendor.conf",
	Codes: map[string]ULong{
		"CKK_SM2":              0x80000004, // CKK_SM2
		"CKK_SM4":              0x80000002, // CKK_SM4
		"CKM_SM2_KEY_PAIR_GEN": 0x80008001, // CKM_SM2_KEY_PAIR_GEN
		"CKM_SM2_SIGN_RAW":     0x80008000, // CKM_VENDOR_SM2
		"CKM_SM3_SM2":          0x80008100, // CKM_SM3_SM2
		"CKM_SM2_ENCRYPT":      0x80008200, // CKM_SM2_RAW
		"CKM_SM3":              0x80000005, // CKM_SM3
		"CKM_SM4_KEY_GEN":      0x80000107, // CKM_SM4_KEY_GEN
		"CKM_SM4_ECB":          0x80000108, // CKM_SM4_ECB
		"CKM_SM4_CBC":          0x80000109, // CKM_SM4_CBC
		"CKM_SM4_MAC":          0x8000010A, // CKM_SM4_MAC
		"CKM_SM4_MAC_GENERAL":  0x8000010B, // CKM_SM4_MAC_GENERAL
		"CKM_SM4_CBC_PAD":      0x8000010C, // CKM_SM4_CBC_PAD
	},
}

// SANSECProfile is SANSEC (三未信安) as recorded in [xipki] "SANSEC HSM".
// CKM_SM4_CBC_PAD is left out on purpose: [xipki] puts it at 0x8000A102 in a
// CKM_SM4 = 0x8000A000 block while [xipki-old] numbers that block differently
// (0x8000A001/A100/A200 for key gen/ECB/CBC), so the value is not settled;
// CKM_SM4_CTR is left out because [xipki] gives it the same value as
// CKM_SM4_XTS.
var SANSECProfile = &Profile{
	Name:        "sansec",
	Description: "SANSEC HSM codes as recorded by xipki/ipkcs11wrapper vendor.conf",
	Codes: map[string]ULong{
		"CKK_SM2":              0x80000004, // CKK_SM2
		"CKK_SM4":              0x80000106, // CKK_SM4
		"CKM_SM2_KEY_PAIR_GEN": 0x80008001, // CKM_SM2_KEY_PAIR_GEN
		"CKM_SM2_SIGN_RAW":     0x80008104, // CKM_SM2_SIGN
		"CKM_SM3_SM2":          0x80008100, // CKM_SM3_SM2
		"CKM_SM2_ENCRYPT":      0x80008200, // CKM_SM2_RAW
		"CKM_SM3":              0x80009001, // CKM_SM3_HASH
		"CKM_SM4_KEY_GEN":      0x80000107, // CKM_SM4_KEY_GEN
		"CKM_SM4_ECB":          0x80000108, // CKM_SM4_ECB
		"CKM_SM4_CBC":          0x80000109, // CKM_SM4_CBC
	},
}

// LunaProfile is Thales (SafeNet) Luna as recorded in [xipki] "Safenet Luna
// HSM" (no SM2 encryption code there, so none here).
var LunaProfile = &Profile{
	Name:        "luna",
	Description: "Thales Luna codes as recorded by xipki/ipkcs11wrapper vendor.conf",
	Codes: map[string]ULong{
		"CKK_SM4":              0x80000015, // CKK_SM4
		"CKK_SM2":              0x80000016, // CKK_SM2
		"CKM_SM3":              0x80000B01, // CKM_SM3
		"CKM_SM3_HMAC":         0x80000B02, // CKM_SM3_HMAC
		"CKM_SM3_HMAC_GENERAL": 0x80000B03, // CKM_SM3_HMAC_GENERAL
		"CKM_SM4_KEY_GEN":      0x80000B10, // CKM_SM4_KEY_GEN
		"CKM_SM4_ECB":          0x80000B11, // CKM_SM4_ECB
		"CKM_SM4_CBC":          0x80000B12, // CKM_SM4_CBC
		"CKM_SM4_CBC_PAD":      0x80000B13, // CKM_SM4_CBC_PAD
		"CKM_SM2_KEY_PAIR_GEN": 0x80000B20, // CKM_SM2_KEY_PAIR_GEN
		"CKM_SM2_SIGN_RAW":     0x80000B21, // CKM_SM2DSA
		"CKM_SM3_SM2":          0x80000B22, // CKM_SM3_SM2DSA
	},
}

var profiles = []*Profile{DefaultProfile, TASSProfile, SANSECProfile, LunaProfile}
