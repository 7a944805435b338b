// P11Test drives a PKCS#11 module through Java's SunPKCS11 provider, the way a
// Java application would: configure the provider, log in through the KeyStore,
// generate keys on the token, sign/verify and AES-GCM round-trip.
//
// usage: java P11Test <module> <decimal slot id> <user PIN>
// Prints "PASS name" / "FAIL name: reason" per check; exit status 1 on any failure.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Provider;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

public class P11Test {
    private static int failures = 0;

    interface Check {
        void run() throws Exception;
    }

    private static boolean check(String name, Check c) {
        try {
            c.run();
            System.out.println("PASS " + name);
            return true;
        } catch (Throwable t) {
            failures++;
            System.out.println("FAIL " + name + ": " + t);
            for (Throwable cause = t.getCause(); cause != null; cause = cause.getCause()) {
                System.out.println("    caused by: " + cause);
            }
            return false;
        }
    }

    private static void require(boolean cond, String what) {
        if (!cond) {
            throw new AssertionError(what);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: java P11Test <module> <decimal slot id> <user PIN>");
            System.exit(2);
        }
        String module = args[0];
        String slot = args[1];
        char[] pin = args[2].toCharArray();

        Path cfg = Files.createTempFile("sunpkcs11-", ".cfg");
        Files.write(cfg, ("name=gohsmtest\nlibrary=" + module + "\nslot=" + slot + "\n")
                .getBytes(StandardCharsets.UTF_8));

        final Provider[] p = new Provider[1];
        if (!check("java SunPKCS11 configure (slot " + slot + ")", () -> {
            p[0] = Security.getProvider("SunPKCS11").configure(cfg.toString());
            require(p[0] != null, "configure returned null");
        })) {
            finish();
        }
        Provider prov = p[0];
        if (!check("java KeyStore PKCS11 load with PIN (C_Login)", () -> {
            KeyStore ks = KeyStore.getInstance("PKCS11", prov);
            ks.load(null, pin);
        })) {
            finish();
        }

        final KeyPair[] kp = new KeyPair[1];
        check("java KeyPairGenerator EC secp256r1 on token", () -> {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC", prov);
            g.initialize(new ECGenParameterSpec("secp256r1"));
            kp[0] = g.generateKeyPair();
            require(kp[0].getPublic() instanceof ECPublicKey, "public key is not an ECPublicKey");
            require(((ECPublicKey) kp[0].getPublic()).getParams().getCurve().getField().getFieldSize() == 256,
                    "public key is not on a 256-bit curve");
        });
        if (kp[0] != null) {
            byte[] msg = "gohsm SunPKCS11 signing test".getBytes(StandardCharsets.UTF_8);
            final byte[][] sig = new byte[1][];
            check("java SHA256withECDSA sign on token", () -> {
                Signature s = Signature.getInstance("SHA256withECDSA", prov);
                s.initSign(kp[0].getPrivate());
                s.update(msg);
                sig[0] = s.sign();
                require(sig[0].length > 8, "signature too short");
            });
            if (sig[0] != null) {
                check("java SHA256withECDSA verify on token", () -> {
                    Signature v = Signature.getInstance("SHA256withECDSA", prov);
                    v.initVerify(kp[0].getPublic());
                    v.update(msg);
                    require(v.verify(sig[0]), "token rejected its own signature");
                });
                check("java SHA256withECDSA verify in software (SunEC)", () -> {
                    Signature v = Signature.getInstance("SHA256withECDSA", "SunEC");
                    v.initVerify(kp[0].getPublic());
                    v.update(msg);
                    require(v.verify(sig[0]), "SunEC rejected the token's signature");
                    Signature bad = Signature.getInstance("SHA256withECDSA", "SunEC");
                    bad.initVerify(kp[0].getPublic());
                    bad.update("another message".getBytes(StandardCharsets.UTF_8));
                    require(!bad.verify(sig[0]), "signature verified over a different message");
                });
            }
        }

        final SecretKey[] aes = new SecretKey[1];
        check("java KeyGenerator AES-256 on token", () -> {
            KeyGenerator g = KeyGenerator.getInstance("AES", prov);
            g.init(256);
            aes[0] = g.generateKey();
        });
        if (aes[0] != null) {
            check("java AES/GCM/NoPadding encrypt+decrypt round trip", () -> {
                byte[] iv = new byte[12];
                new SecureRandom().nextBytes(iv);
                byte[] aad = "header".getBytes(StandardCharsets.UTF_8);
                byte[] pt = new byte[1000];
                new SecureRandom().nextBytes(pt);
                Cipher enc = Cipher.getInstance("AES/GCM/NoPadding", prov);
                enc.init(Cipher.ENCRYPT_MODE, aes[0], new GCMParameterSpec(128, iv));
                enc.updateAAD(aad);
                byte[] ct = enc.doFinal(pt);
                require(ct.length == pt.length + 16, "ciphertext length " + ct.length + ", want " + (pt.length + 16));
                require(!Arrays.equals(Arrays.copyOf(ct, pt.length), pt), "ciphertext equals plaintext");
                Cipher dec = Cipher.getInstance("AES/GCM/NoPadding", prov);
                dec.init(Cipher.DECRYPT_MODE, aes[0], new GCMParameterSpec(128, iv));
                dec.updateAAD(aad);
                byte[] back = dec.doFinal(ct);
                require(Arrays.equals(back, pt), "decrypted text differs from plaintext");

                ct[3] ^= 1;
                Cipher dec2 = Cipher.getInstance("AES/GCM/NoPadding", prov);
                dec2.init(Cipher.DECRYPT_MODE, aes[0], new GCMParameterSpec(128, iv));
                dec2.updateAAD(aad);
                try {
                    dec2.doFinal(ct);
                    throw new AssertionError("tampered ciphertext decrypted without error");
                } catch (AEADBadTagException expected) {
                    // CKR_ENCRYPTED_DATA_INVALID from C_Decrypt maps here.
                }
            });
        }
        finish();
    }

    private static void finish() {
        System.out.println(failures == 0 ? "java: all checks passed" : "java: " + failures + " check(s) failed");
        System.exit(failures == 0 ? 0 : 1);
    }
}
