package server

import (
	"github.com/gohsm/gohsm/gateway/auth"
	"github.com/gohsm/gohsm/gateway/kv"
	"github.com/gohsm/gohsm/gateway/policy"
	"github.com/gohsm/gohsm/gateway/transit"
)

// Stores builds the token and policy stores on one kv.Store (the gateway's
// whole state: tokens under token/, policies under policy/acl/, mounts
// under mounts/, key rings under transit/).
func Stores(store kv.Store, certs []auth.CertIdentity) (*auth.Store, *policy.Store) {
	return auth.NewStore(store, auth.Options{NotFound: kv.ErrNotFound, Certificates: certs}),
		policy.NewStore(store, kv.ErrNotFound, 0)
}

// TransitEngines returns a Config.NewEngine that makes gateway/transit
// engines over ex, with their key-ring metadata in meta.
func TransitEngines(ex transit.Exec, meta kv.Store, cfg transit.Config) func(mount string) (Engine, error) {
	return func(mount string) (Engine, error) {
		e, err := transit.New(mount, ex, meta, cfg)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}
