#!/usr/bin/python3
"""Drive a PKCS#11 module through PyKCS11 (Debian's, for /usr/bin/python3).

usage: /usr/bin/python3 pykcs11_test.py <module> <token label> <user PIN>

Generates RSA-2048 and EC P-256 key pairs on the token, signs and verifies
with them (token and, when python3-cryptography is there, software), and
checks that a tampered signature is refused with CKR_SIGNATURE_INVALID.
Prints "PASS name" / "FAIL name: reason"; exits 1 on any failure.
"""
import hashlib
import sys
import traceback

import PyKCS11
from PyKCS11 import LowLevel

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
except ImportError:  # software cross-checks are skipped
    ec = None

failures = 0


def check(name, fn):
    global failures
    try:
        fn()
        print("PASS " + name, flush=True)
        return True
    except Exception as e:  # report every failure the same way
        failures += 1
        print("FAIL %s: %r" % (name, e), flush=True)
        traceback.print_exc(file=sys.stdout)
        return False


def main():
    module, label, pin = sys.argv[1:4]
    lib = PyKCS11.PyKCS11Lib()
    st = {}

    def load():
        lib.load(module)
        slots = lib.getSlotList(tokenPresent=True)
        for s in slots:
            if lib.getTokenInfo(s).label.strip() == label:
                st["slot"] = s
                return
        raise AssertionError("no token labelled %r in slots %r" % (label, slots))

    if not check("pykcs11 load module, find token", load):
        return

    def login():
        sess = lib.openSession(st["slot"], PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
        sess.login(pin)
        st["s"] = sess

    if not check("pykcs11 open R/W session and C_Login", login):
        return
    s = st["s"]
    data = b"gohsm PyKCS11 test message " * 20

    def gen_rsa():
        pub_t = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
            (PyKCS11.CKA_TOKEN, True),
            (PyKCS11.CKA_VERIFY, True),
            (PyKCS11.CKA_MODULUS_BITS, 2048),
            (PyKCS11.CKA_PUBLIC_EXPONENT, (0x01, 0x00, 0x01)),
            (PyKCS11.CKA_LABEL, "py-rsa"),
            (PyKCS11.CKA_ID, (0x21,)),
        ]
        priv_t = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
            (PyKCS11.CKA_TOKEN, True),
            (PyKCS11.CKA_PRIVATE, True),
            (PyKCS11.CKA_SENSITIVE, True),
            (PyKCS11.CKA_SIGN, True),
            (PyKCS11.CKA_LABEL, "py-rsa"),
            (PyKCS11.CKA_ID, (0x21,)),
        ]
        st["rsa"] = s.generateKeyPair(pub_t, priv_t, mecha=PyKCS11.MechanismRSAGENERATEKEYPAIR)
        pub = st["rsa"][0]
        mod, exp = s.getAttributeValue(pub, [PyKCS11.CKA_MODULUS, PyKCS11.CKA_PUBLIC_EXPONENT])
        assert len(bytes(mod)) == 256, "modulus is %d bytes, want 256" % len(bytes(mod))
        assert int.from_bytes(bytes(exp), "big") == 65537, "public exponent %r" % (exp,)
        st["rsa_n"], st["rsa_e"] = int.from_bytes(bytes(mod), "big"), 65537
        priv = st["rsa"][1]
        sens, = s.getAttributeValue(priv, [PyKCS11.CKA_SENSITIVE])
        assert sens is True, "CKA_SENSITIVE of the private key is %r" % (sens,)

    def gen_ec():
        # DER OID of prime256v1 (1.2.840.10045.3.1.7) as CKA_EC_PARAMS.
        p256 = bytes.fromhex("06082a8648ce3d030107")
        pub_t = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
            (PyKCS11.CKA_TOKEN, True),
            (PyKCS11.CKA_VERIFY, True),
            (PyKCS11.CKA_EC_PARAMS, p256),
            (PyKCS11.CKA_LABEL, "py-ec"),
            (PyKCS11.CKA_ID, (0x22,)),
        ]
        priv_t = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
            (PyKCS11.CKA_TOKEN, True),
            (PyKCS11.CKA_PRIVATE, True),
            (PyKCS11.CKA_SENSITIVE, True),
            (PyKCS11.CKA_SIGN, True),
            (PyKCS11.CKA_LABEL, "py-ec"),
            (PyKCS11.CKA_ID, (0x22,)),
        ]
        st["ec"] = s.generateKeyPair(pub_t, priv_t, mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
        point, = s.getAttributeValue(st["ec"][0], [PyKCS11.CKA_EC_POINT])
        point = bytes(point)
        # CKA_EC_POINT is a DER OCTET STRING holding the uncompressed point (04 || X || Y).
        assert point[:3] == b"\x04\x41\x04" and len(point) == 67, "CKA_EC_POINT %s" % point.hex()
        st["ec_point"] = point[2:]

    check("pykcs11 generateKeyPair RSA-2048", gen_rsa)
    check("pykcs11 generateKeyPair EC P-256", gen_ec)

    def find():
        for lbl in ("py-rsa", "py-ec"):
            objs = s.findObjects([(PyKCS11.CKA_LABEL, lbl), (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)])
            assert len(objs) == 1, "%d private keys labelled %s" % (len(objs), lbl)

    check("pykcs11 findObjects finds both private keys", find)

    def tampered(sig):
        b = bytearray(sig)
        b[len(b) // 2] ^= 0x01
        return bytes(b)

    def expect_invalid(pub, sig, mech, msg):
        try:
            ok = s.verify(pub, msg, sig, mech)
        except PyKCS11.PyKCS11Error as e:
            assert e.value == PyKCS11.CKR_SIGNATURE_INVALID, "tampered signature: %s, want CKR_SIGNATURE_INVALID" % e
            return
        assert not ok, "tampered signature verified"

    if "rsa" in st:
        pub, priv = st["rsa"]
        mech = PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS, None)

        def rsa_sign():
            sig = bytes(s.sign(priv, data, mech))
            assert len(sig) == 256, "signature is %d bytes" % len(sig)
            assert s.verify(pub, data, sig, mech), "token rejected its own signature"
            expect_invalid(pub, tampered(sig), mech, data)
            if ec is not None:
                k = rsa.RSAPublicNumbers(st["rsa_e"], st["rsa_n"]).public_key()
                k.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())

        check("pykcs11 RSA SHA256-RSA-PKCS sign/verify (+ tamper, + software)", rsa_sign)

        def rsa_pss():
            params = PyKCS11.RSA_PSS_Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS_PSS, PyKCS11.CKM_SHA256,
                                               PyKCS11.CKG_MGF1_SHA256, 32)
            sig = bytes(s.sign(priv, data, params))
            assert s.verify(pub, data, sig, params), "token rejected its own PSS signature"
            if ec is not None:
                k = rsa.RSAPublicNumbers(st["rsa_e"], st["rsa_n"]).public_key()
                k.verify(sig, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())

        check("pykcs11 RSA SHA256-RSA-PKCS-PSS sign/verify (+ software)", rsa_pss)

    if "ec" in st:
        pub, priv = st["ec"]
        mech = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA, None)
        digest = hashlib.sha256(data).digest()

        def ec_sign():
            sig = bytes(s.sign(priv, digest, mech))
            assert len(sig) == 64, "raw ECDSA P-256 signature is %d bytes, want 64" % len(sig)
            assert s.verify(pub, digest, sig, mech), "token rejected its own signature"
            expect_invalid(pub, tampered(sig), mech, digest)
            if ec is not None:
                k = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), st["ec_point"])
                r, ss = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
                k.verify(utils.encode_dss_signature(r, ss), data, ec.ECDSA(hashes.SHA256()))

        check("pykcs11 ECDSA (SHA-256 digest) sign/verify (+ tamper, + software)", ec_sign)

        def ec_sign_sha256():
            m = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA_SHA256, None)
            sig = bytes(s.sign(priv, data, m))
            assert len(sig) == 64, "signature is %d bytes" % len(sig)
            assert s.verify(pub, digest, sig, mech), "CKM_ECDSA rejected a CKM_ECDSA_SHA256 signature"

        check("pykcs11 ECDSA-SHA256 sign, CKM_ECDSA verify", ec_sign_sha256)

    def cleanup():
        for kp in (st.get("rsa"), st.get("ec")):
            if kp:
                for h in kp:
                    s.destroyObject(h)
        left = s.findObjects([(PyKCS11.CKA_LABEL, "py-rsa")]) + s.findObjects([(PyKCS11.CKA_LABEL, "py-ec")])
        assert not left, "%d objects left after C_DestroyObject" % len(left)
        s.logout()
        s.closeSession()

    check("pykcs11 destroy keys, logout, close", cleanup)


if __name__ == "__main__":
    main()
    print("pykcs11: %s" % ("all checks passed" if failures == 0 else "%d check(s) failed" % failures))
    sys.exit(1 if failures else 0)
