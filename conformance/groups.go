package conformance

// allGroups is the whole suite in run order, grouped by the spec's
// chapters. The raw group must come first: it sees the library before any
// C_Initialize.
func allGroups() []group {
	return []group{
		{name: "init", kind: kindRaw, checks: initChecks()},
		{name: "info", kind: kindSlots, checks: infoChecks()},
		{name: "token", kind: kindToken, checks: tokenChecks()},
		{name: "pin", kind: kindToken, checks: pinChecks()},
		{name: "session", kind: kindToken, checks: sessionChecks()},
		{name: "login", kind: kindToken, checks: append(loginChecks(), nullPINChecks()...)},
		{name: "object", kind: kindKeeper, checks: objectChecks()},
		{name: "find", kind: kindKeeper, checks: findChecks()},
		{name: "crypto", kind: kindKeeper, checks: cryptoChecks()},
		{name: "v3", kind: kindKeeper, checks: v3Checks()},
		{name: "keyprot", kind: kindKeeper, checks: keyProtChecks()},
		{name: "keyprot-login", kind: kindToken, checks: keyProtLoginChecks()},
		{name: "xproc", kind: kindToken, checks: xprocChecks()},
		{name: "vectors", kind: kindKeeper, checks: vectorsChecks()}, // opt-in: Options.WycheproofDir
	}
}

func cryptoChecks() []check {
	var cs []check
	cs = append(cs, opChecks()...)
	cs = append(cs, digestChecks()...)
	cs = append(cs, cipherChecks()...)
	cs = append(cs, signChecks()...)
	cs = append(cs, keygenChecks()...)
	cs = append(cs, wrapChecks()...)
	cs = append(cs, blockWrapChecks()...)
	cs = append(cs, modeChecks()...)
	cs = append(cs, opStateChecks()...)
	cs = append(cs, randomChecks()...)
	return cs
}
