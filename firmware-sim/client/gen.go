package client

import "github.com/gohsm/gohsm/hsm"

//go:generate go run ./internal/gencalls

// The client is an hsm.Backend: zcalls.go has a method for every call of the
// wire table that is not written by hand in sessions.go or client.go.
var _ hsm.Backend = (*Client)(nil)
