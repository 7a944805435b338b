// Package wire is the appliance's native protocol as pure bytes: frame
// headers, the handshake, the typed encoding of every PKCS#11 value the
// engine exchanges (mechanism parameters, templates, info structures), and
// the call table that binds each call id to an hsm.Backend method.
//
// spec.md in this directory is the normative description; this package is
// its Go implementation. There is no I/O here and no cryptography: the
// server and the client read and write frames on their own connections and
// use this package to build and parse them, so the codec can be tested and
// fuzzed alone.
//
// Concurrency: the call table and the codecs are immutable after package
// initialisation and safe for concurrent use. An Encoder or a Decoder is a
// cursor over one buffer and belongs to one goroutine; the call and result
// functions take theirs from a sync.Pool and give them back reset.
//
// Robustness: every decoder takes attacker-controlled bytes. It never
// panics, never allocates more than the input can justify (a count or a
// length is checked against the bytes that remain before anything is made),
// and reports the PKCS#11 code the server answers with (ErrArgs, ErrParam).
package wire
