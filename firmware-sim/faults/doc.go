// Package faults is the firmware simulator's fault and latency injector: a
// fault plan (JSON, Parse) run by an Injector and applied to any
// hsm.Backend by the Backend decorator (Wrap): the local engine, the
// appliance's client in the module, each connection's engine in the
// appliance. A plan fails the Nth call of a function, or each with a seeded
// probability, with a given CKR; delays calls by a fixed amount, a
// distribution or a named profile of a real device; pulls a token out of
// its slot and puts it back (sessions closed, CKF_TOKEN_PRESENT off,
// C_WaitForSlotEvent told); and hides new keys from other sessions for a
// while (key-sync lag). docs/firmware.md, "Faults and latency", is the
// user's documentation of the format; the module reads a plan from
// GOHSM_FAULTS or the configuration's faults key (Shared), the appliance
// from its faults key (Watch).
package faults
