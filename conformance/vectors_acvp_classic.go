package conformance

import (
	"fmt"

	"github.com/miekg/pkcs11"
)

// ACVP EdDSA, AES-CMAC and KDA HKDF through the C ABI.

// vecACVPEdDSA runs ACVP EDDSA keyVer and sigVer. The public key is
// CKA_EC_PARAMS (the curve OID) + CKA_EC_POINT (DER OCTET STRING of q);
// preHash groups verify with CK_EDDSA_PARAMS phFlag=TRUE and an empty
// context (Ed25519ph, RFC 8032 5.1), the others with no parameter (pure
// Ed25519). keyVer: a valid q must import and C_VerifyInit; an invalid
// one may be refused by either (CKR_PUBLIC_KEY_INVALID or an attribute
// value error), and its acceptance is reported among the cases not run.
func (t *T) vecACVPEdDSA() {
	sets := t.acvp("EDDSA")
	v := t.vecRun("ACVP EDDSA")
	curves := map[string][]byte{"ED-25519": ed25519OID, "ED-448": ed448OID}
	var m cmem
	defer m.free()
	for i := range sets {
		s := &sets[i]
		for _, raw := range s.TestGroups {
			var g struct {
				TgID    int    `json:"tgId"`
				Curve   string `json:"curve"`
				PreHash bool   `json:"preHash"`
				Tests   []struct {
					acvpCase
					Q, Message, Signature, Context string
				} `json:"tests"`
			}
			s.group(t, raw, &g)
			oid, ok := curves[g.Curve]
			if !ok {
				t.failf("ACVP EDDSA %s: curve %q", s.Mode, g.Curve)
			}
			for _, tc := range g.Tests {
				ok := s.passed(t, tc.TcID)
				c := acvpWP(tc.TcID, ok, "%s %s preHash=%v tgId %d", g.Curve, s.Mode, g.PreHash, g.TgID)
				key, rv := v.create([]*pkcs11.Attribute{
					attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
					attr(pkcs11.CKA_EC_PARAMS, oid), attr(pkcs11.CKA_EC_POINT, derOctets(t.ahx(tc.Q))),
					attr(pkcs11.CKA_VERIFY, true),
				})
				o := outcome{rv: rv, stage: "C_CreateObject(EdDSA public key)"}
				switch s.Mode {
				case "keyVer":
					if rv == 0 {
						err := t.s.ctx.VerifyInit(v.sh, mech(ckmEdDSA, nil), key)
						o = outcome{rv: rvOf(err), stage: "C_CreateObject + C_VerifyInit"}
						if err == nil {
							// End the operation the check opened.
							t.s.ctx.Verify(v.sh, nil, make([]byte, 2*len(t.ahx(tc.Q))))
						}
					}
					if o.rv == 0 && !ok {
						// 3.0 5.1: CKR_PUBLIC_KEY_INVALID "may be returned"
						// by C_CreateObject or C_VerifyInit: validation is
						// optional, so acceptance is counted, not failed.
						v.skip("invalid keyVer keys accepted by C_CreateObject and C_VerifyInit (validation is optional, 3.0 5.1 CKR_PUBLIC_KEY_INVALID)")
					} else {
						v.judge(c, o, nil, joinRV(refuseKey, []uint{pkcs11.CKR_KEY_TYPE_INCONSISTENT})...)
					}
				case "sigVer":
					if rv == 0 {
						var p any
						if ctx := t.ahx(tc.Context); g.PreHash || len(ctx) > 0 {
							p = eddsaParams(&m, g.PreHash, ctx)
						}
						o = v.verify(ckmEdDSA, p, key, t.ahx(tc.Message), t.ahx(tc.Signature))
					}
					v.judge(c, o, nil, refuseSig...)
				default:
					t.failf("ACVP EDDSA: mode %q", s.Mode)
				}
				v.cleanup()
			}
		}
	}
	v.done()
}

// vecACVPCMAC runs ACVP CMAC-AES through CKM_AES_CMAC_GENERAL with the
// group's macLen as CK_MAC_GENERAL_PARAMS: "gen" cases must C_Sign to the
// answer's mac, "ver" cases are judged by C_Verify against testPassed.
func (t *T) vecACVPCMAC() {
	sets := t.acvp("CMAC-AES")
	v := t.vecRun("ACVP CMAC-AES")
	for i := range sets {
		s := &sets[i]
		for _, raw := range s.TestGroups {
			var g struct {
				TgID      int    `json:"tgId"`
				Direction string `json:"direction"`
				KeyLen    int    `json:"keyLen"`
				MacLen    int    `json:"macLen"`
				Tests     []struct {
					acvpCase
					Key, Message, Mac string
				} `json:"tests"`
			}
			s.group(t, raw, &g)
			param := ulong(uint64(g.MacLen / 8))
			for _, tc := range g.Tests {
				key, rv := v.secretKey(pkcs11.CKK_AES, t.ahx(tc.Key), pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY)
				o := outcome{rv: rv, stage: "C_CreateObject(AES key)"}
				msg := t.ahx(tc.Message)
				switch g.Direction {
				case "gen":
					var want struct{ Mac string }
					s.answer(t, tc.TcID, &want)
					if rv == 0 {
						if err := t.s.ctx.SignInit(v.sh, mech(ckmAESCMACGeneral, param), key); err != nil {
							o = outcome{rv: rvOf(err), stage: "C_SignInit(CKM_AES_CMAC_GENERAL)"}
						} else {
							out, err := t.s.ctx.Sign(v.sh, msg)
							o = outcome{rv: rvOf(err), stage: "C_Sign(CKM_AES_CMAC_GENERAL)", got: out}
						}
					}
					c := acvpWP(tc.TcID, true, "AES-%d gen macLen %d msgLen %d tgId %d", g.KeyLen, g.MacLen, len(msg)*8, g.TgID)
					v.judge(c, o, t.ahx(want.Mac))
				case "ver":
					ok := s.passed(t, tc.TcID)
					if rv == 0 {
						o = v.verify(ckmAESCMACGeneral, param, key, msg, t.ahx(tc.Mac))
					}
					c := acvpWP(tc.TcID, ok, "AES-%d ver macLen %d msgLen %d tgId %d", g.KeyLen, g.MacLen, len(msg)*8, g.TgID)
					v.judge(c, o, nil, refuseSig...)
				default:
					t.failf("ACVP CMAC-AES: direction %q", g.Direction)
				}
				v.cleanup()
			}
		}
	}
	v.done()
}

// acvpHKDFPRF maps an ACVP hmacAlg to the digest mechanism that is
// CK_HKDF_PARAMS.prfHashMechanism.
var acvpHKDFPRF = map[string]uint{
	"SHA-1": pkcs11.CKM_SHA_1, "SHA2-224": pkcs11.CKM_SHA224, "SHA2-256": pkcs11.CKM_SHA256,
	"SHA2-384": pkcs11.CKM_SHA384, "SHA2-512": pkcs11.CKM_SHA512,
	"SHA2-512/224": pkcs11.CKM_SHA512_224, "SHA2-512/256": pkcs11.CKM_SHA512_256,
	"SHA3-224": 0x2B5, "SHA3-256": ckmSHA3_256, "SHA3-384": 0x2C0, "SHA3-512": 0x2D0,
}

// hkdfPRFParams lays out CK_HKDF_PARAMS (3.0 curr 2.43.2) for
// extract-and-expand with the given PRF and salt data.
func hkdfPRFParams(m *cmem, prf uint, salt, info []byte) []byte {
	return cat(bbool8(true, true), ulong(uint64(prf)), ulong(ckfHKDFSaltData),
		ptr(m.bytes(salt)), ulong(uint64(len(salt))), ulong(0), ptr(m.bytes(info)), ulong(uint64(len(info))))
}

// vecACVPKDAHKDF runs the HKDF mode of ACVP KDA (SP 800-56C rev 1 two-step
// with HMAC, i.e. RFC 5869) through CKM_HKDF_DERIVE: z is the input key,
// the salt is the vector's, and the fixed info (pattern
// uPartyInfo||vPartyInfo, each partyId||ephemeralData) is CK_HKDF_PARAMS
// pInfo; L bits are derived into a readable generic secret. AFT cases must
// give the answer's dkm; VAL cases carry a dkm the answer calls right or
// wrong, and the module's output must agree exactly when it is right.
// The other KDA modes (one-step) have no PKCS#11 mechanism and are
// counted as not expressible.
func (t *T) vecACVPKDAHKDF() {
	sets := t.acvp("KDA")
	v := t.vecRun("ACVP KDA HKDF")
	var m cmem
	defer m.free()
	type party struct{ PartyID, EphemeralData string }
	for i := range sets {
		s := &sets[i]
		for _, raw := range s.TestGroups {
			var g struct {
				TgID     int    `json:"tgId"`
				TestType string `json:"testType"`
				Config   struct {
					KdfType, HmacAlg, FixedInfoPattern, FixedInfoEncoding string
					L                                                     int
				} `json:"kdfConfiguration"`
				Tests []struct {
					acvpCase
					U   party `json:"fixedInfoPartyU"`
					V   party `json:"fixedInfoPartyV"`
					Kdf struct {
						KdfType, Salt, Z string
						L                int
					} `json:"kdfParameter"`
					Dkm string `json:"dkm"`
				} `json:"tests"`
			}
			s.group(t, raw, &g)
			if s.Mode != "HKDF" {
				v.n += len(g.Tests)
				v.skipped[fmt.Sprintf("KDA %s cases (no PKCS#11 mechanism)", s.Mode)] += len(g.Tests)
				continue
			}
			if g.Config.FixedInfoPattern != "uPartyInfo||vPartyInfo" || g.Config.FixedInfoEncoding != "concatenation" {
				t.failf("ACVP KDA HKDF tgId %d: fixed info %s/%s", g.TgID, g.Config.FixedInfoPattern, g.Config.FixedInfoEncoding)
			}
			prf, ok := acvpHKDFPRF[g.Config.HmacAlg]
			if !ok {
				t.failf("ACVP KDA HKDF tgId %d: hmacAlg %q", g.TgID, g.Config.HmacAlg)
			}
			for _, tc := range g.Tests {
				info := append(append(t.ahx(tc.U.PartyID), t.ahx(tc.U.EphemeralData)...),
					append(t.ahx(tc.V.PartyID), t.ahx(tc.V.EphemeralData)...)...)
				base, rv := v.secretKey(pkcs11.CKK_GENERIC_SECRET, t.ahx(tc.Kdf.Z), pkcs11.CKA_DERIVE)
				o := outcome{rv: rv, stage: "C_CreateObject(z)"}
				if rv == 0 {
					p := hkdfPRFParams(&m, prf, t.ahx(tc.Kdf.Salt), info)
					h, err := t.s.ctx.DeriveKey(v.sh, mech(ckmHKDFDerive, p), base, derivedSecret(tc.Kdf.L/8))
					o = outcome{rv: rvOf(err), stage: "C_DeriveKey(CKM_HKDF_DERIVE, " + g.Config.HmacAlg + ")"}
					if err == nil {
						v.track(h)
						o.got, o.rv = v.value(h)
					}
				}
				switch {
				case o.rv == pkcs11.CKR_MECHANISM_PARAM_INVALID && o.stage != "C_CreateObject(z)" && !t.s.mechs[prf]:
					// A token need not offer as a PRF a hash it does not
					// list at all; one it lists must work.
					v.skip("cases whose PRF " + g.Config.HmacAlg + " the module neither lists nor accepts (CKR_MECHANISM_PARAM_INVALID)")
				case g.TestType == "VAL":
					ok := s.passed(t, tc.TcID)
					v.judgeMatch(acvpWP(tc.TcID, ok, "%s VAL tgId %d", g.Config.HmacAlg, g.TgID), o, t.ahx(tc.Dkm), ok)
				default:
					var want struct{ Dkm string }
					s.answer(t, tc.TcID, &want)
					v.judge(acvpWP(tc.TcID, true, "%s AFT tgId %d", g.Config.HmacAlg, g.TgID), o, t.ahx(want.Dkm))
				}
				v.cleanup()
			}
		}
	}
	v.done()
}

func acvpClassicChecks() []check {
	return []check{
		{id: "vectors.acvp.eddsa", spec: acvpSpec + eddsaSpec + " (ACVP EDDSA keyVer, sigVer pure and preHash)", mech: ckmEdDSA, fn: func(t *T) {
			t.vecACVPEdDSA()
		}},
		{id: "vectors.acvp.cmac-aes", spec: acvpSpec + "3.0 curr: CKM_AES_CMAC_GENERAL with CK_MAC_GENERAL_PARAMS (ACVP CMAC-AES gen and ver)", mech: ckmAESCMACGeneral, fn: func(t *T) {
			t.vecACVPCMAC()
		}},
		{id: "vectors.acvp.kda-hkdf", spec: acvpSpec + "3.0 curr 2.43.2 CKM_HKDF_DERIVE (ACVP KDA HKDF, SP 800-56C two-step)", mech: ckmHKDFDerive, fn: func(t *T) {
			t.vecACVPKDAHKDF()
		}},
	}
}
