// Package tokens keeps the engine's tokens on disk. It implements
// hsm.Storage (Dir) and hsm.Store (Store); the engine seals every secret
// attribute itself, so this package stores records and never sees a key or
// a PIN in the clear.
//
// # Layout
//
// A token directory holds tokens/NNNNNN.db, one SQLite database per token.
// The number is the creation order and therefore the slot order, the same
// in every process and across restarts. Directories are 0700, files 0600
// (SQLite gives the -wal and -shm files the mode of the database). Create
// builds the schema in a temporary file and links it under the next free
// number (link fails if another process took it), so a NNNNNN.db file
// without a schema is damaged, never mistaken for a new token.
//
// Inside a file: schema_version and an append-only migration list
// (schema.go); meta (the change generation, the generation of the last
// Reinit, the next object id); token (one row); objects, one row per
// object with its version (gen: the generation of the commit that wrote
// it), the clear attributes as one compact blob (faster to load than a row
// per attribute: 100,000 objects are 100,000 rows, not 2,500,000), the
// sealed blob, and indexed copies of CKA_CLASS, CKA_LABEL and CKA_ID;
// tombstones (every id ever deleted, by a commit or by Reinit: for
// incremental reload, and so that a deleted id is never stored again);
// mac_key (schema 2: the key of the row MACs).
//
// Why SQLite, and why modernc.org/sqlite: a real embedded database gives
// atomic, crash-safe transactions and multi-process locking that a
// home-made format would have to reinvent. libgohsm.so is loaded into
// arbitrary processes, and NSS and Firefox link their own libsqlite3; a
// second C SQLite in one process risks symbol clashes, a pure-Go one has
// none.
//
// # Crash safety
//
// Every Store method is one transaction in a WAL-mode database, so a
// kill -9 at any instant keeps every commit that returned (its pages are in
// the WAL file, in the OS page cache) and loses the whole of any that did
// not. Against power loss and OS crashes the level is chosen per commit
// (see durability in store.go): the token record (PIN retry counters),
// Reinit, and every Commit that deletes, replaces or writes several
// objects are fsynced before they return (synchronous=FULL: a power cut
// must not give a PIN guesser its tries back or undo a CKA_SENSITIVE); a
// Commit that only inserts one new object is not (NORMAL), which makes
// C_CreateObject ~3x faster, and becomes durable at
// the next fsynced commit or checkpoint, by any process. A power cut in
// between loses the newest created objects whole, never part of one and
// never anything older (WAL recovery keeps a checksummed prefix of
// commits). docs/store.md has the measurements. TestCrashKill9 kills a raw
// store writer 50 times; TestTorture kills a process driving the engine
// (create, modify, destroy) 40 times (GOHSM_TORTURE_KILLS=200 for more)
// and checks every returned call after each kill.
//
// # Backup
//
// Store.Backup writes one file: a VACUUM INTO snapshot (one read
// transaction; no os-level open of the token file) encrypted in 64 KiB
// AES-256-GCM chunks under a key from Argon2id(passphrase) or ECDH to a
// recipient key (format in backup.go). Dir.Restore authenticates the whole
// file, runs the full Check, and links it into the next slot.
//
// # Damage
//
// A damaged file gives an error wrapping ck.CKR_DEVICE_ERROR, never wrong
// data. Open runs PRAGMA quick_check (the b-tree structure of every table
// and index page; about 2 µs per object, ~200 ms at 100,000 RSA keys, on
// top of ~500 ms to load them), and cell_size_check is on. SQLite does not
// checksum values, so every object row and the token row carry a CRC-32C
// of their content and id, verified on every read: a flipped bit inside a
// label or a CKA_PRIVATE flag is an error, not a different object. The
// indexed columns are copies; damage to one can make FindIDs miss an
// object but never return a wrong one (it verifies each row it returns),
// and Store.Check (integrity_check) finds it.
//
// A CRC catches accidents only: an edit that recomputes it passes. Since
// schema 2 every object row and the token row also carry an HMAC-SHA256
// (mac.go) over a domain string, the id, the version, the private flag,
// the encoded clear attributes and the sealed blob (the token row: its
// version and every field), under a random 32-byte key generated with the
// schema and kept in the file (mac_key). It is checked on every read after
// the CRC, with hmac.Equal; a missing or wrong MAC is CKR_DEVICE_ERROR
// naming the row ("object 7 fails its MAC"), so an edited CKA_SENSITIVE,
// CKA_EXTRACTABLE, template, usage flag or PIN retry counter fails closed.
// The two checks tell damage (bad CRC) from an edit (good CRC, bad MAC).
// The MAC costs ~1.5 µs per 2 KiB row (SHA-NI), ~150 ms on top of the
// ~500 ms load of 100,000 RSA-key-sized objects; migrating such a token
// from schema 1 (a MAC written into every row) takes a few seconds, once.
// What it does not do: the key is in the same file, so someone who reads
// it and this code can forge rows; and a whole older row, or a deleted one
// copied back from an old copy of the file, verifies. What does not depend
// on the file is the engine's AES-GCM seal under the token key (private
// objects): it protects the secret values and, through its associated
// data, the clear attributes of objects that have secrets (hsm/seal.go),
// so a forged row makes such a key unusable, not readable. A schema-1 file
// is MAC'd when first opened by this code (trust on upgrade; a row whose
// CRC already fails is left without a MAC and stays an error). Every
// process sharing a token must run schema-2 code: rows an old process
// (opened before the upgrade) writes carry no MAC and fail closed.
//
// # Concurrency
//
// Several processes may open the same token. SQLite's file locks (POSIX
// record locks) let one writer at a time commit while readers go on from
// their WAL snapshot; writers take the lock at BEGIN (BEGIN IMMEDIATE), so
// a transaction never fails half-way on a lock upgrade, and a writer of
// another process waits up to busy_timeout (10 s) before
// CKR_DEVICE_ERROR. Inside one process a Store has a small pool of
// connections (4): writers queue on a Go mutex (fair, no busy polling),
// readers use their own connections and never wait for a writer's fsync.
// Object ids come from a counter in the file, reserved in blocks, so they
// are unique across processes and never reused, even after a delete or a
// Reinit.
//
// Writing on a stale view: every object row carries its version (gen), and
// the only object write, Store.Commit (hsm.Change), is a compare-and-set
// of a whole change in one IMMEDIATE transaction: a replace or delete
// names the version it was decided on, a new object must have an id that
// was never stored (tombstones remember deleted ids, Reinit's included),
// and objects the change only read (the source of a copy) are Required at
// their version. If any version moved, nothing is written and the error
// wraps hsm.ErrConflict (not CKR_DEVICE_ERROR); the engine catches up and
// decides again. So a process that read a key before another made it
// CKA_SENSITIVE cannot write the old attributes back, and a destroyed
// object never comes back (TestMultiProcessStaleWriter,
// TestStaleWriterProcesses).
//
// Seeing other processes' changes: every write transaction adds one to a
// generation counter. Store.Changed (one row read, a few µs) reports
// whether anyone else committed since this Store last loaded; then
// Store.ObjectsSince(since, put, del) replays only what changed (objects by
// an indexed generation column, deletions from tombstones) and says
// whether the token record changed or a Reinit requires a full reload.
// The engine can call Changed at the start of each call that reads objects.
//
// Because POSIX locks belong to the process, code in the same process that
// opens and closes a token file with the os package (a backup, a hash)
// would silently drop SQLite's locks: read token files only through a
// Store, or with every Store on that file closed.
package tokens
