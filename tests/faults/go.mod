module github.com/gohsm/gohsm/tests/faults

go 1.26

require (
	github.com/ThalesIgnite/crypto11 v1.2.5
	github.com/miekg/pkcs11 v1.1.2
)

require (
	github.com/pkg/errors v0.8.1 // indirect
	github.com/thales-e-security/pool v0.0.2 // indirect
)
