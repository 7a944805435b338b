// Package device is the appliance's firmware simulation: power-on
// self-tests (package selftest), the lifecycle of a device that holds a
// master key split among custodians (factory → initialised → sealed ⇄
// operational → zeroised, and error), signed firmware images with a
// minimum security version, and the Guard, an hsm.Backend decorator that
// answers CKR_DEVICE_ERROR to every call outside the operational state
// (but C_GetInfo, C_GetSlotList, C_GetSlotInfo and C_GetTokenInfo, which
// say why). docs/firmware.md is the user's view.
//
// Files, in the store directory D:
//
//	D/device/state    the device's state, JSON, MAC'd (state.go)
//	D/device/secret   S: 32 random bytes; zeroisation destroys it
//	D/admin.sock      the running appliance's admin socket (admin.go)
//
// The token store's device key is HKDF-SHA256(master key, salt S, info
// "gohsm device key v1" | device id): hsm.Config.DeviceKey seals every
// token record under it (hsm/devicekey.go). Without S no set of shares can
// ever derive it again; without M shares S alone is useless.
package device

//go:generate go run ./internal/genguard/cmd
