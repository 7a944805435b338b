// Package transit is the gateway's key-ring and Transit operations
// library: Vault Transit's semantics (key rings with versions, encrypt,
// decrypt, rewrap, data keys, sign, verify, hmac, random, batches) over
// keys that live in PKCS#11 tokens. It knows no HTTP: gateway/http decodes
// requests into this package's types and encodes its responses.
//
// Key model. A key ring is a name on a mount with versions 1..latest.
// Each version is one to three token objects (the secret or private key,
// the public key, and a companion HMAC key so that hmac works on every
// type, as in Vault), addressed by CKA_ID. The ring's metadata (type,
// versions with their object IDs, creation times and public keys,
// min_decryption/encryption/available versions, deletion_allowed,
// exportable, auto_rotate_period) is one JSON entry in the kv store, which
// in production lives on the tokens too (kv.OnToken): a gateway keeps no
// state of its own.
//
// Concurrency. An Engine is safe for concurrent use. Batch items run in
// parallel on up to Config.Workers token sessions, each session taking a
// contiguous run of items: the first run on the caller's goroutine, the
// others on package-wide helper goroutines that wait for the next batch
// for a while after their run (batch.go). An item that is one token call
// (encrypt, sign) is planned first, and a run's calls then go to its
// session together (token.Many), which an appliance's session makes in
// one exchange instead of a round trip or two per item. Metadata changes are read-modify-write with
// kv.Swapper.CompareAndSwap on the entry's exact bytes: a writer whose
// entry changed since it read retries from a fresh read, so two gateways
// rotating at once both get their version (a rotate that loses the swap
// destroys the objects it made and makes new ones for the next number;
// object IDs carry a random part, so the loser never touches the winner's
// objects). CAS rather than a lock: PKCS#11 has no lock a crashed gateway
// would release, while a failed swap costs only a retry. Reads use a
// cached copy for at most Config.MetaTTL, except that a ciphertext,
// signature or HMAC naming a version newer than the cached latest makes
// the ring be read again at once.
//
// Key types are a table (keytypes.go): per type the PKCS#11 key type,
// generation mechanism and template parameters, the operation mechanisms
// (which also become CKA_ALLOWED_MECHANISMS, so the token refuses any other
// use), Vault's supports_* flags and the public-key export format.
//
// Where it differs from Vault, on purpose:
//   - the token makes every nonce: convergent encryption and a caller's
//     nonce are refused (400);
//   - context is bound as AEAD associated data together with
//     associated_data (for RSA, as the OAEP label), not used to derive a
//     per-context key; derived=true means "context required" (kdf "aad");
//   - encrypting, signing or HMACing with a version below
//     min_decryption_version is refused: the output could not be opened;
//   - exportable cannot be turned on after creation: PKCS#11 lets
//     CKA_EXTRACTABLE go only from true to false. The export, backup,
//     restore and import endpoints are not offered;
//   - RSA-PSS with salt_length auto signs with the longest salt and
//     verifies the longest or the hash-length salt; Ed25519ph
//     (prehashed ed25519) is not offered;
//   - beyond Vault: sm2 (SM3-with-SM2, DER or r||s), sm4-gcm and
//     ml-dsa-44/65/87 (pure, or HashML-DSA when prehashed), with the SM
//     codes of the tokens' vendor profile (Config.SMProfile).
package transit
