// Package audit is the appliance's audit log: an append-only file of
// hash-chained records of every call that changes state, written and
// fsynced before the call's result is returned, and fail-closed. Wrap puts
// it in front of any hsm.Backend; Verify (and `gohsm audit verify`) checks
// a log and names its first broken record.
//
// # Record format
//
// One record per line, UTF-8 JSON, "\n"-terminated, at most MaxLine bytes.
// Members appear in this fixed order, without white space; optional members
// (all but seq, time, who, call, prev, hash) are left out when empty:
//
//	seq       1 for the genesis record, +1 per record, no gaps
//	time      UTC, RFC 3339 with nine fractional digits (2026-01-02T15:04:05.123456789Z)
//	who       the client certificate's identity string, or "local"
//	call      C_Login, C_GenerateKey, ... or the log's own audit.genesis, audit.open, audit.close
//	phase     "intent" (written before the call runs) or "result" (after)
//	ref       in a result: the seq of its intent
//	slot, session, flags, user, username, label, mech, key, object
//	          what the call touches: slot id; session handle (in a C_OpenSession
//	          result, the new one); C_OpenSession's flags; CKU_ name; C_LoginUser's
//	          user name; C_InitToken's token label; CKM_ name (a vendor code as
//	          0x%08X); the key a call uses (wrapping, unwrapping, base, KEM key);
//	          the object it acts on (destroyed, changed, copied, wrapped)
//	template, pub_template, priv_template
//	          the attribute TYPES of a template (CKA_ names), never values (intent only)
//	query     true for a length query (C_WrapKey with no buffer, C_EncapsulateKey with none)
//	created   in a result: the handles made (a key pair: public, private)
//	rv        in a result: the CKR name the call returned
//	chain, version, mac, key_id
//	          genesis: a random 128-bit chain id, FormatVersion, "sha256" or
//	          "hmac-sha256", and for a keyed log KeyID(key)
//	note      the log's own events: e.g. a torn tail cut at open
//	prev      the previous record's hash (64 zeros for the genesis record)
//	hash      64 lowercase hex digits: SHA-256 (or HMAC-SHA256 under the key)
//	          of the line's exact bytes without its hash member, i.e. of the
//	          line up to and including `"prev":"<hex>"` followed by `}`
//
// Strings are escaped one way only (\" \\ and \u00XX for control characters
// and DEL; invalid UTF-8 is written as U+FFFD), so every record has exactly
// one encoding; ParseRecord accepts only that one (it re-encodes and
// compares), so what is hashed and what is read cannot differ. A verifier in
// another language needs no JSON canonicaliser: cut `,"hash":"<64 hex>"}`
// off the end of the line, append `}`, hash, compare.
//
// What a record never holds: a PIN (C_Login, C_InitToken, C_InitPIN,
// C_SetPIN record that the call happened and its result, not the PIN), a
// mechanism parameter (IVs, ECDH public data, KDF salts and shared data), a
// wrapped key, a ciphertext, data, or any attribute value. Labels: the token
// label of C_InitToken is recorded (every client may read it with
// C_GetTokenInfo, before any login, and it names the token erased); object
// labels and IDs are not, because they are template values, and PKCS#11
// hides a private object's label before login: one rule, "types only",
// is easier to check than a list of exceptions. Objects are named by handle,
// which for token objects is stable across sessions and restarts.
//
// # Calls audited, and the two-phase rule
//
// The audited calls are one table (the audited variable in calls.go;
// AuditedCalls lists it); every other hsm.Backend method is listed in
// notAudited with its reason (reads, and cryptographic operations with
// existing keys, for volume). Logins are audited on every attempt, so a
// failed one is always there (its rv).
//
// Every audited call is written twice. Before it runs, an intent record
// (fsynced): if that cannot be written, the call is refused with
// CKR_DEVICE_ERROR and never reaches the engine, so nothing happens that is
// not on disk first (a PIN guess included). After it runs, a result record
// with its rv and outputs (fsynced): if that cannot be written, the caller
// gets CKR_DEVICE_ERROR instead of the result and the outputs are withheld
// (a wrapped key is not returned). The change may have happened; the intent
// without a result says so. Any write or fsync error marks the Log failed:
// every later Append, hence every later audited call, is refused until the
// log is reopened (a restart), because after a failed write the file's tail
// is unknown and after a failed fsync the kernel may have dropped the pages
// (a retried fsync that succeeds proves nothing). Reads and cryptographic
// operations are not audited and go on working: the log failing does not
// lose any record of them. A record too long to write (a template with tens
// of thousands of attributes) refuses the call with CKR_ARGUMENTS_BAD
// without failing the log. A crash between the two records leaves an
// intent without a result: the outcome is unknown, and the audit.open
// record after it shows the restart.
//
// # Durability and concurrency
//
// A Log has one writer at a time (a mutex orders sequence numbers, links and
// the write), and Append returns only once its record is fsynced. Appends
// that arrive while an fsync is running are written and then share the next
// fsync (group commit), so many sessions do not wait for one fsync each.
// Log and Wrap's backend are safe for concurrent use; records of concurrent
// calls interleave, and a result names its intent by ref. Open takes an
// exclusive flock on the file against a second process appending, verifies
// the whole existing file before appending (a keyed log with its key), and
// refuses a broken one with a *ChainError naming its first bad record. A
// last line without a newline is a torn write (a crash or a full disk mid
// write: never acknowledged, since acknowledgement follows fsync);
// Options.RecoverTornTail lets Open cut it off and say so in the
// audit.open record, otherwise Open refuses it like any other break. An
// empty file is a new log.
//
// # Threat model
//
// The chain proves that the records from the genesis record to the last
// one are the ones written, in that order, with none removed, changed or
// inserted between them, against anyone who edits the file without the
// HMAC key (Options.Key). With the default plain SHA-256 it detects
// accidental damage and clumsy edits only: whoever can write the file can
// rewrite it and recompute every hash. With a key, forging, altering,
// reordering or deleting a record inside the chain needs the key, which
// must therefore live apart from the log (the appliance holds it; an
// auditor verifies with a copy).
//
// What the chain cannot show on its own: that records were removed from the
// end, or that the whole file was replaced by a new log (a fresh genesis): a
// log cut at a line boundary is a valid log, and Open starts a new chain in
// an empty file. Only a head kept elsewhere shows that: Head returns the
// last durable record's seq and hash (Chain the chain id), which the
// appliance is to write to its operational log at every start (gohsm serve's
// job), and better still to a remote collector from time to time; `gohsm
// audit verify --head SEQ:HASH` then checks that the file still holds that
// record. Nor does the log protect against the appliance itself: a
// compromised appliance holds the key and can write anything. Times come
// from the appliance's clock and are not checked for order.
package audit
