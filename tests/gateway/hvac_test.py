#!/usr/bin/python3
"""Debian's python3-hvac (0.11.2) against the gohsm crypto gateway.

Run by gateway/server's TestHvac (and so by `make test` through test-go),
or by hand against `gohsm serve --dev`:

    VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=$(cat D/token) /usr/bin/python3 tests/gateway/hvac_test.py

It uses only hvac's own methods (secrets.transit, sys, auth.token), as an
application would, and prints one "ok" line per step; any failure raises.
"""
import base64
import os
import sys

import hvac
import hvac.exceptions


def b64(s):
    return base64.b64encode(s).decode()


def main():
    url, root = os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"]
    c = hvac.Client(url=url, token=root)
    t = c.secrets.transit
    steps = []

    def ok(what):
        steps.append(what)
        print("ok  " + what)

    assert c.is_authenticated(), "root token not accepted"
    ok("is_authenticated")

    t.create_key(name="hv")
    ok("create_key aes256-gcm96")
    pt = b64(b"hvac says hello")
    ct1 = t.encrypt_data(name="hv", plaintext=pt)["data"]["ciphertext"]
    assert ct1.startswith("vault:v1:"), ct1
    ok("encrypt_data")
    assert t.decrypt_data(name="hv", ciphertext=ct1)["data"]["plaintext"] == pt
    ok("decrypt_data")
    ctx = b64(b"tenant-7")
    ctc = t.encrypt_data(name="hv", plaintext=pt, context=ctx)["data"]["ciphertext"]
    assert t.decrypt_data(name="hv", ciphertext=ctc, context=ctx)["data"]["plaintext"] == pt
    try:
        t.decrypt_data(name="hv", ciphertext=ctc, context=b64(b"tenant-8"))
        raise AssertionError("decrypted under the wrong context")
    except hvac.exceptions.InvalidRequest:
        pass
    ok("context bound as AAD (wrong context: InvalidRequest)")

    t.rotate_key(name="hv")
    ok("rotate_key")
    k = t.read_key(name="hv")["data"]
    assert k["latest_version"] == 2 and k["supports_encryption"], k
    ok("read_key (latest_version 2)")
    assert t.decrypt_data(name="hv", ciphertext=ct1)["data"]["plaintext"] == pt
    ok("decrypt_data of a v1 ciphertext after rotate")
    ct2 = t.rewrap_data(name="hv", ciphertext=ct1)["data"]["ciphertext"]
    assert ct2.startswith("vault:v2:"), ct2
    ok("rewrap_data (v1 -> v2)")
    t.update_key_configuration(name="hv", min_decryption_version=2)
    try:
        t.decrypt_data(name="hv", ciphertext=ct1)
        raise AssertionError("v1 decrypted after min_decryption_version 2")
    except hvac.exceptions.InvalidRequest:
        pass
    assert t.decrypt_data(name="hv", ciphertext=ct2)["data"]["plaintext"] == pt
    ok("update_key_configuration min_decryption_version=2 (v1 refused, v2 fine)")
    assert "hv" in t.list_keys()["data"]["keys"]
    ok("list_keys (LIST)")

    for key_type in ("ecdsa-p256", "ed25519", "rsa-2048"):
        name = "hv-" + key_type
        t.create_key(name=name, key_type=key_type)
        msg = b64(b"sign me")
        sig = t.sign_data(name=name, hash_input=msg)["data"]["signature"]
        assert t.verify_signed_data(name=name, hash_input=msg, signature=sig)["data"]["valid"] is True
        assert t.verify_signed_data(name=name, hash_input=b64(b"not me"), signature=sig)["data"]["valid"] is False
        ok("sign_data / verify_signed_data " + key_type)
    sig = t.sign_data(name="hv-rsa-2048", hash_input=msg, hash_algorithm="sha2-512", signature_algorithm="pkcs1v15")["data"]["signature"]
    assert t.verify_signed_data(name="hv-rsa-2048", hash_input=msg, signature=sig, hash_algorithm="sha2-512", signature_algorithm="pkcs1v15")["data"]["valid"]
    ok("sign/verify rsa-2048 sha2-512 pkcs1v15")

    mac = t.generate_hmac(name="hv", hash_input=msg)["data"]["hmac"]
    assert t.verify_signed_data(name="hv", hash_input=msg, hmac=mac)["data"]["valid"] is True
    ok("generate_hmac / verify (hmac)")

    dk = t.generate_data_key(name="hv", key_type="plaintext")["data"]
    assert t.decrypt_data(name="hv", ciphertext=dk["ciphertext"])["data"]["plaintext"] == dk["plaintext"]
    wk = t.generate_data_key(name="hv", key_type="wrapped")["data"]
    assert "plaintext" not in wk and wk["ciphertext"].startswith("vault:v2:")
    ok("generate_data_key plaintext and wrapped")

    items = [{"plaintext": b64(b"item %d" % i), "reference": "r%d" % i} for i in range(50)]
    res = t.encrypt_data(name="hv", plaintext="", batch_input=items)["data"]["batch_results"]
    assert len(res) == 50 and all(r["ciphertext"].startswith("vault:v2:") for r in res)
    assert [r["reference"] for r in res] == ["r%d" % i for i in range(50)]
    back = t.decrypt_data(name="hv", ciphertext="", batch_input=[{"ciphertext": r["ciphertext"]} for r in res])["data"]["batch_results"]
    assert [r["plaintext"] for r in back] == [i["plaintext"] for i in items]
    ok("batch encrypt/decrypt of 50 items, references echoed")

    rnd = t.generate_random_bytes(n_bytes=32)["data"]["random_bytes"]
    assert len(base64.b64decode(rnd)) == 32
    ok("generate_random_bytes")

    # Policies and tokens: an encrypt-only token may not decrypt.
    c.sys.create_or_update_policy(name="hv-enc", policy='path "transit/encrypt/hv" { capabilities = ["update"] }')
    assert "hv-enc" in c.sys.list_policies()["data"]["policies"]
    ok("sys.create_or_update_policy / list_policies")
    tok = c.auth.token.create(policies=["hv-enc"], ttl="10m")["auth"]["client_token"]
    enc = hvac.Client(url=url, token=tok)
    enc.secrets.transit.encrypt_data(name="hv", plaintext=pt)
    try:
        enc.secrets.transit.decrypt_data(name="hv", ciphertext=ct2)
        raise AssertionError("encrypt-only token decrypted")
    except hvac.exceptions.Forbidden:
        pass
    ok("auth.token.create; encrypt-only token: encrypt ok, decrypt Forbidden")
    assert enc.lookup_token()["data"]["policies"] == ["default", "hv-enc"]
    ok("lookup-self")
    try:
        hvac.Client(url=url, token="").secrets.transit.encrypt_data(name="hv", plaintext=pt)
        raise AssertionError("no token accepted")
    except hvac.exceptions.Forbidden:
        pass
    ok("no token: Forbidden")

    # Another transit mount.
    c.sys.enable_secrets_engine("transit", path="hv-transit")
    assert "hv-transit/" in c.sys.list_mounted_secrets_engines()["data"]
    t.create_key(name="m", mount_point="hv-transit")
    ctm = t.encrypt_data(name="m", plaintext=pt, mount_point="hv-transit")["data"]["ciphertext"]
    assert t.decrypt_data(name="m", ciphertext=ctm, mount_point="hv-transit")["data"]["plaintext"] == pt
    c.sys.disable_secrets_engine("hv-transit")
    ok("sys.enable_secrets_engine / list / disable")

    health = c.sys.read_health_status(method="GET")
    assert health["initialized"] and not health["sealed"], health
    ok("sys.read_health_status")
    print("%d hvac steps passed" % len(steps))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 -- report any failure and exit 1
        print("FAIL: %r" % (e,), file=sys.stderr)
        raise
