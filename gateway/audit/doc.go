// Package audit is the gateway's audit log: one JSON line per request and
// one per response, hash-chained, with every secret value replaced by its
// HMAC-SHA256 under an audit key (Vault's "hmac-sha256:<hex>" form), and
// fail-closed: a request whose record cannot be written is refused with 500
// and never reaches the engine (a request without side effects, whose
// record is only queued, finds the log failed at once, or its answer is
// held back by its response record's failure); a response whose record
// cannot be written becomes a 500 (the operation may have happened; its
// request record says so).
//
// # Record format
//
// One record per line, "\n"-terminated, at most MaxLine bytes. Members in
// this fixed order (optional ones left out when empty):
//
//	seq      1 for the genesis record, +1 per record, no gaps
//	time     UTC, RFC 3339 with nanoseconds
//	type     genesis | open | request | response
//	id       the request's id (a response carries its request's id)
//	op       create | read | update | delete | list
//	path     the Vault path without /v1/ (transit/encrypt/k)
//	remote   the client's address
//	auth     accessor (HMAC'd), client_token (HMAC'd), display_name,
//	         policies, token_type: who asked
//	data     the request body / the response's data, with secrets HMAC'd
//	status   the HTTP status (responses)
//	error    the error message sent (responses)
//	format, chain, key_id, note
//	         genesis: "gohsm-gateway-audit/1", a random chain id, and the
//	         audit key's id (the first 16 hex digits of SHA-256 over
//	         "gohsm-gateway-audit-key-id\x00" || key); open: a note
//	prev     the previous record's hash (64 zeros for the genesis record)
//	hash     SHA-256 of the line's bytes without its hash member: the line
//	         up to and including `"prev":"<hex>"` followed by `}`
//
// The chain is a plain SHA-256, so anyone can verify it without the key
// (`gohsm audit verify FILE` recognises a gateway log by its genesis
// record's format and names the first broken record); editing, inserting
// or removing a record breaks the chain from that record on. Cutting the
// tail off cannot be seen from the file alone: keep the head (Head) outside
// it, as the appliance's log does.
//
// # What is HMAC'd
//
// Every string value of request and response data, at any depth, in
// objects and arrays (batch_input and batch_results items included), is
// replaced by "hmac-sha256:" + hex(HMAC-SHA256(audit key, value)), except
// the members named in PlainFields (key type, algorithms, policy names and
// documents, display names, errors): values that say what was asked, not
// what was protected. So plaintext, ciphertext, input, context,
// associated_data, hmac, signature, client_token, accessor, public keys and
// references never appear as written. Numbers and booleans stay (key
// versions, valid). A body that is not a JSON object (malformed input) is
// recorded as body_hmac and body_bytes. The client token and accessor in
// auth are HMAC'd too, as Vault does by default; an operator who knows a
// value finds its records with HashValue (or Vault's sys/audit-hash idea:
// `gohsm audit hash`), and the audit key must be kept as secret as the
// data: whoever has it can test guesses of a low-entropy plaintext.
//
// # Durability (fsync policy)
//
// Write returns once its record is written to the file and, under
// SyncAlways (the default), fsynced. Concurrent writers share writes and
// fsyncs (group commit), which are separate steps. A deferred record
// (Entry.Deferred: the request record of a call without side effects) is
// only queued: the next record written carries it, its response record's
// at the latest, so the pair costs one write and one fsync and no answer
// leaves before both are in the file. Flush writes the queue at once, for
// a request about to change something after all; Close and SyncInterval's
// loop write it too. A waiter that finds no write in flight writes every
// record queued so far, and never waits for an fsync in flight. A durable record that finds no fsync in flight is written
// (with everything queued) and fsynced; one that arrives while an fsync is
// in flight waits queued, since that fsync began before it and cannot
// cover it, and the first such waiter then writes the whole group and
// fsyncs once. An fsync answers exactly the records written before it
// began. A busy gateway pays one write and one fsync per group of
// responses, not per request. SyncInterval writes before returning
// and fsyncs at most every Options.Interval in the background (a crash can
// lose the last interval's records; a background fsync error fails the log,
// so later requests are refused); SyncNone leaves it to the kernel (as
// Vault's file audit device does). Any write or fsync error marks the Log
// failed: every later Write fails, hence every later request, until the
// gateway restarts and reopens the log (after a failed fsync the kernel
// may have dropped the pages; a retried fsync that succeeds proves
// nothing).
//
// # Concurrency
//
// A Log is safe for concurrent use. Building a record (scanning and
// HMACing the data) happens outside the lock; numbering, chaining and
// queueing are under one mutex; writing is done by one writer at a time
// and fsyncing by one syncer at a time, both outside it (a write and an
// fsync may overlap). Waiters read the progress (last record written,
// last fsynced) atomically and sleep on the channel of the round in
// flight, so a round's end wakes its waiters without a lock convoy.
//
// # Redaction
//
// A raw body is redacted in one pass over its bytes (scan.go): a strict
// JSON scanner copies the structure, sorts each object's members by name
// (the last of duplicate names kept), writes numbers as written and
// replaces strings by their HMAC, with one HMAC state and pooled buffers
// per record. Its output is byte for byte that of decoding the body with
// encoding/json (UseNumber) and writing the value back with sorted keys,
// and it accepts exactly the bodies that decoder accepts as one object;
// FuzzRedactDifferential and TestRedactRandom hold it to that. Response
// data whose shape the caller knows can skip the JSON round trip: an
// Entry.Data that is a Redactable writes its own redaction with the log's
// Redactor (typed.go), under the same rules, or declines and the record
// takes Body's; gateway/server's hot responses do (with their own
// differential test). An API token's identity can be sealed (Log.Seal):
// its HMACs made once, the secret dropped, the Auth reused per request.
package audit
