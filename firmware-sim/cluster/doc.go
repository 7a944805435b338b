// Package cluster replicates the appliance's token store over
// hashicorp/raft, so that three (or five) appliances serve one set of
// tokens: crypto and reads on every member, writes through the leader.
//
// # What is replicated
//
// Every write the engine makes to its hsm.Store — object create, copy,
// destroy and attribute change (Store.Commit, a compare-and-set of a whole
// hsm.Change), the token record (C_InitToken, PIN changes, the PIN retry
// counters: UpdateToken as a compare-and-set loop on the record's
// version), new tokens, and object-id reservations — is one raft log entry
// (codec.go). The state machine (fsm.go) applies each entry to the
// member's copy of the store, a tokens.Dir under Dir/state, with the
// store's own methods. Each member's copy therefore goes through the same
// sequence of transactions and its versions (object gens, tombstones,
// the token row's gen) agree with every other's, so a change that
// conflicts on one member conflicts on all: a member whose engine decided
// on a stale view gets hsm.ErrConflict, never an old row back, exactly as
// a stale process does on one machine (tokens/doc.go).
//
// Entries and snapshots carry records as the engine sealed them: secret
// attributes only in ObjectRecord.Sealed (AES-256-GCM under the token key),
// the token key only wrapped under PIN-derived keys. No member ever holds a
// plaintext key outside its engines' memory (TestNoPlaintextInLogOrSnapshot
// searches the raft log and snapshot files for a known key and PIN).
//
// A member rebuilds its copy at every start from the newest snapshot and
// the log (Dir/state is removed first), so a crash at any point cannot
// leave a copy that disagrees with the log; a member that joins or falls
// behind the log's tail catches up from a snapshot (Restore replaces each
// token's whole content in one transaction, tokens.Store.ReplaceState).
//
// # Consistency
//
// Writes are linearizable: they are ordered by the log and acknowledged
// after commit, once applied on the writing member too. Reads are
// linearizable through a read barrier: before the engine looks for others'
// changes (hsm.SharedStore.Changed, which it calls at every operation's
// init, object search, login and token info), the member asks the leader
// for its applied index and waits until it has applied that much itself.
// The leader answers after confirming it still leads (VerifyLeader: one
// heartbeat round to a majority); every write it acknowledged was applied
// on it first, and one raft barrier per term of leadership makes it apply
// what earlier leaders committed (Node.leaderReadIndex). So a key
// made through member A is usable through member B as soon as
// C_GenerateKey returns on A. A member cut off from the leader fails the
// barrier after Config.ReadTimeout with CKR_DEVICE_ERROR rather than serve
// a possibly stale view (a key made non-extractable, a destroyed key).
//
// # Membership, devices, new tokens, metrics
//
// A member without raft state bootstraps a cluster of itself
// (Config.Bootstrap), joins one (Config.Join), or waits for Init (gohsm
// cluster init; init.go), which refuses a member that has raft state.
// Members compare device key fingerprints, never keys (device.go): a
// joiner whose device differs is refused, a restarted member checks
// against the leader, and a new member can fetch the device record over
// the raft port (gohsm cluster device-copy). An engine adopts tokens made
// elsewhere at its next C_GetSlotList (Storage.NewStores,
// hsm.GrowingStorage). Collector (metrics.go) is the member's own view for
// Prometheus.
//
// # Transport
//
// The raft port speaks mutual TLS 1.3 with certificates from the cluster
// CA only (transport.go), carrying raft's NetworkTransport and a small
// net/rpc service (rpc.go) for forwarded writes, read indexes,
// membership changes and status.
//
// # Concurrency
//
// A Node is safe for concurrent use. raft calls the state machine's Apply,
// Snapshot and Restore one at a time on its FSM goroutine; Snapshot
// exports the tokens before it returns and Persist (concurrent with later
// Applies) only writes those bytes. The fsm's mutex guards its slot map and
// applied index, with a condition variable that writers and read barriers
// wait on. Engines read their own tokens.Store handles concurrently with
// the state machine's writes (SQLite WAL: readers never wait for the
// writer). Read-index requests are coalesced (batcher): concurrent callers
// share one round trip that started after they arrived. Storage and Store
// are safe for concurrent use (Store's id block has its own mutex;
// Storage's mutex guards the slots it gave its engine, and is held across
// Create's write so that NewStores never offers a token twice).
package cluster
