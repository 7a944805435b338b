#!/usr/bin/python3
"""Key wrapping between the module and OpenSSL, both ways, through PyKCS11.

usage: /usr/bin/python3 wrap_interop.py <module> <token label> <SO PIN> <user PIN> <work dir>

1. The token wraps a sensitive AES-256 key with RSA-OAEP (SHA-256) under an
   RSA public key that the SO marked CKA_TRUSTED; the openssl command line
   unwraps it with the private key and decrypts, with `openssl enc`, data the
   token encrypted under that AES key.
2. openssl wraps an AES key under the RSA public key; the token unwraps it
   with the private key (imported), and decrypts data openssl encrypted.
3. The same sensitive key is refused (CKR_KEY_NOT_WRAPPABLE) under an RSA
   public key that is not trusted: a key the caller controls must not be
   able to carry a sensitive key out (the first Tookan attack).
Prints "PASS name" / "FAIL name: reason"; exits 1 on any failure.
"""
import os
import subprocess
import sys
import traceback

import PyKCS11
from PyKCS11 import LowLevel

failures = 0


def check(name, fn):
    global failures
    try:
        fn()
        print("PASS " + name, flush=True)
        return True
    except Exception as e:
        failures += 1
        print("FAIL %s: %r" % (name, e), flush=True)
        traceback.print_exc(file=sys.stdout)
        return False


def openssl(*args, stdin=None):
    return subprocess.run(("openssl",) + args, input=stdin, check=True, capture_output=True).stdout


def rsa_numbers(pem):
    """Modulus and public exponent of a PEM private key, via openssl."""
    text = openssl("rsa", "-in", pem, "-noout", "-text").decode()
    mod = openssl("rsa", "-in", pem, "-noout", "-modulus").decode().strip().split("=", 1)[1]
    exp = int(text.split("publicExponent: ", 1)[1].split(" ", 1)[0])
    return bytes.fromhex(mod), exp.to_bytes((exp.bit_length() + 7) // 8, "big")


def main():
    module, label, so_pin, pin, work = sys.argv[1:6]
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    slot = [s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == label][0]
    pem = os.path.join(work, "rsa.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem)
    n, e = rsa_numbers(pem)
    oaep = PyKCS11.RSAOAEPMechanism(PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256)
    iv = bytes(16)
    data = b"wrapped by gohsm, unwrapped by openssl " * 3

    def pubkey(trusted):
        return [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA),
            (PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE), (PyKCS11.CKA_MODULUS, n), (PyKCS11.CKA_PUBLIC_EXPONENT, e),
            (PyKCS11.CKA_WRAP, PyKCS11.CK_TRUE), (PyKCS11.CKA_ENCRYPT, PyKCS11.CK_FALSE),
            (PyKCS11.CKA_LABEL, "trusted-rsa" if trusted else "plain-rsa"),
        ] + ([(PyKCS11.CKA_TRUSTED, PyKCS11.CK_TRUE)] if trusted else [])

    def so_marks_trusted():
        so = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
        so.login(so_pin, user_type=PyKCS11.CKU_SO)
        so.createObject(pubkey(True))
        so.logout()
        so.closeSession()

    if not check("SO creates a CKA_TRUSTED RSA public key", so_marks_trusted):
        return
    s = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    s.login(pin)

    def wrap_out():
        trusted = s.findObjects([(PyKCS11.CKA_LABEL, "trusted-rsa")])[0]
        aes = s.generateKey([
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
            (PyKCS11.CKA_VALUE_LEN, 32), (PyKCS11.CKA_TOKEN, PyKCS11.CK_FALSE),
            (PyKCS11.CKA_SENSITIVE, PyKCS11.CK_TRUE), (PyKCS11.CKA_EXTRACTABLE, PyKCS11.CK_TRUE),
            (PyKCS11.CKA_ENCRYPT, PyKCS11.CK_TRUE), (PyKCS11.CKA_LABEL, "secret-aes"),
        ], PyKCS11.MechanismAESGENERATEKEY)
        ct = bytes(s.encrypt(aes, data, PyKCS11.Mechanism(PyKCS11.CKM_AES_CBC_PAD, iv)))
        blob = bytes(s.wrapKey(trusted, aes, oaep))
        with open(os.path.join(work, "blob"), "wb") as f:
            f.write(blob)
        key = openssl("pkeyutl", "-decrypt", "-inkey", pem, "-in", os.path.join(work, "blob"),
                      "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                      "-pkeyopt", "rsa_mgf1_md:sha256")
        assert len(key) == 32, "openssl unwrapped %d bytes" % len(key)
        pt = openssl("enc", "-d", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex(), stdin=ct)
        assert pt == data, "openssl could not decrypt the token's data with the unwrapped key"

    check("token wraps AES-256 by RSA-OAEP-SHA256, openssl unwraps and decrypts", wrap_out)

    def untrusted_refused():
        plain = s.createObject(pubkey(False))
        aes = s.generateKey([
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
            (PyKCS11.CKA_VALUE_LEN, 32), (PyKCS11.CKA_TOKEN, PyKCS11.CK_FALSE),
            (PyKCS11.CKA_SENSITIVE, PyKCS11.CK_TRUE), (PyKCS11.CKA_EXTRACTABLE, PyKCS11.CK_TRUE),
        ], PyKCS11.MechanismAESGENERATEKEY)
        try:
            s.wrapKey(plain, aes, PyKCS11.MechanismRSAPKCS1)
        except PyKCS11.PyKCS11Error as err:
            assert err.value == PyKCS11.CKR_KEY_NOT_WRAPPABLE, "refused with %s" % err
            return
        raise AssertionError("a sensitive key was wrapped under an untrusted key the caller imported")

    check("sensitive key refused under an untrusted RSA key", untrusted_refused)

    def unwrap_in():
        # Import the private key from its PKCS#1 components.
        fields = {}
        txt = openssl("rsa", "-in", pem, "-text", "-noout").decode()
        cur = None
        for line in txt.splitlines():
            if line and not line.startswith(" ") and ":" in line:
                cur = line.split(":", 1)[0]
                rest = line.split(":", 1)[1].strip()
                fields[cur] = rest
            elif cur and line.startswith(" "):
                fields[cur] += line.strip()
        num = lambda k: bytes.fromhex(fields[k].replace(":", "")).lstrip(b"\0") or b"\0"
        rsa = s.createObject([
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA),
            (PyKCS11.CKA_TOKEN, PyKCS11.CK_FALSE), (PyKCS11.CKA_MODULUS, n), (PyKCS11.CKA_PUBLIC_EXPONENT, e),
            (PyKCS11.CKA_PRIVATE_EXPONENT, num("privateExponent")), (PyKCS11.CKA_PRIME_1, num("prime1")),
            (PyKCS11.CKA_PRIME_2, num("prime2")), (PyKCS11.CKA_EXPONENT_1, num("exponent1")),
            (PyKCS11.CKA_EXPONENT_2, num("exponent2")), (PyKCS11.CKA_COEFFICIENT, num("coefficient")),
            (PyKCS11.CKA_UNWRAP, PyKCS11.CK_TRUE), (PyKCS11.CKA_DECRYPT, PyKCS11.CK_FALSE),
        ])
        key = os.urandom(32)
        blob = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", _pub(pem, work), "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                       "-pkeyopt", "rsa_mgf1_md:sha256", stdin=key)
        aes = s.unwrapKey(rsa, blob, [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
            (PyKCS11.CKA_TOKEN, PyKCS11.CK_FALSE), (PyKCS11.CKA_DECRYPT, PyKCS11.CK_TRUE),
        ], oaep)
        ct = openssl("enc", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex(), stdin=data)
        pt = bytes(s.decrypt(aes, ct, PyKCS11.Mechanism(PyKCS11.CKM_AES_CBC_PAD, iv)))
        assert pt == data, "the token could not decrypt openssl's data with the key it unwrapped"

    check("openssl wraps AES-256 by RSA-OAEP-SHA256, token unwraps and decrypts", unwrap_in)
    s.logout()
    s.closeSession()
    print("wrap_interop done", flush=True)


def _pub(pem, work):
    p = os.path.join(work, "pub.pem")
    openssl("pkey", "-in", pem, "-pubout", "-out", p)
    return p


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc(file=sys.stdout)
        failures += 1
    sys.exit(1 if failures else 0)
