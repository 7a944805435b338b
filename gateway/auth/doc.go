// Package auth is the gateway's authentication: Vault-style API tokens and
// client certificates (mTLS), resolved to a set of policy names.
//
// # Tokens
//
// A token is what Vault calls a service token: a secret the client sends
// in X-Vault-Token (or Authorization: Bearer), an accessor (a second,
// non-secret handle that can look the token up or revoke it but not use
// it), policies, a TTL, optional num_uses, a display name, metadata, and a
// parent. The secret is "hvs." followed by 43 base62 characters drawn from
// crypto/rand: 256 bits. The prefix is Vault's for service tokens, so that
// Vault clients, scrubbers and secret scanners that recognise Vault tokens
// recognise these (a gohsm token works only against the gateway that
// issued it, as a Vault token works only against its cluster). Accessors are
// 24 base62 characters, as Vault's.
//
// # Storage: hashed, never the secret
//
// The store keeps SHA-256("gohsm-gateway-token\x00" || secret), hex, as the
// record's key and in the record; the secret itself is never written, logged
// or kept in memory after Create returns it. A plain hash and not an HMAC
// under a store key: the secret has 256 bits of entropy, so a hash cannot be
// reversed or brute-forced, and a key would add nothing — it would have to
// live in the same backend as the hashes (every gateway must compute them),
// so whoever can read the hashes can read the key, and losing it would lock
// out every token. (Vault HMACs under a salt kept in the same storage for
// the same reason it is not needed here: Vault allows caller-chosen
// low-entropy token IDs; this store does not.) The record is fetched by the
// hash and its stored hash is then compared with crypto/subtle's
// ConstantTimeCompare: the map lookup by hash leaks nothing about the secret
// (its timing depends on the hash, which an attacker cannot steer towards a
// valid token), and the comparison guards against a backend that answers
// for the wrong key.
//
// # Persistence
//
// Tokens live in a Backend the core provides (token data objects on the HSM
// tokens: the gateway keeps no state of its own), under these keys:
//
//	token/h/<hash>                 the record (JSON, decodeRecord)
//	token/a/<accessor>             the hash, to find a token by accessor
//	token/c/<parent>/<child>       an empty value: child accessor under parent accessor
//
// A token is valid exactly while its token/h record exists and has not
// expired: Create writes the index entries first and the record last;
// revocation deletes the record first. Lookups are cached for
// Options.CacheTTL (2 s by default): revocation is immediate in the process
// that revokes (it drops its cache entry), and reaches other gateways
// sharing the backend within CacheTTL. Tokens with num_uses are never cached:
// each use is a read and a write of the record under the store's lock
// (across gateways two concurrent uses can race and both succeed: the count
// is exact within one gateway, and at most one extra use per other gateway
// is possible).
//
// # Parents and children
//
// As in Vault: a child token gets a subset of its parent's policies unless
// the parent is root or the caller has sudo on the create path
// (CreateRequest.Sudo), "default" is added as Vault adds it, only root can
// make root tokens, and orphans (no parent) need root or sudo. Revoking a
// token revokes its descendants; a token whose parent has expired or was
// revoked elsewhere stops working (Lookup checks the parent chain, cached
// like the token).
//
// # Client certificates
//
// Options.Certificates maps a verified client certificate to policies, by
// SHA-256 fingerprint of the DER certificate and/or subject common name.
// ForCertificate does not verify the chain: the TLS server must (RequireAnd
// VerifyClientCert against the configured CA pool); it only maps an
// authenticated certificate to an identity. Such an identity has no secret
// and cannot be revoked or renewed; remove it from the configuration.
package auth
