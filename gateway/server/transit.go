package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gohsm/gohsm/gateway/policy"
	"github.com/gohsm/gohsm/gateway/transit"
)

// The transit handlers: decode the body into gateway/transit's request
// struct, fill what Vault takes from the path, call the mount's engine.

func (c *call) engine() Engine { return c.mount.engine }

// context carries, for a call whose audit request record is only queued
// (a pure route), the flush the engine runs before it changes anything
// after all (transit.WithBeforeChange).
func (c *call) context() context.Context {
	if c.queued && c.s.cfg.Audit != nil {
		return transit.WithBeforeChange(context.Background(), c.s.cfg.Audit.Flush)
	}
	return context.Background()
}

// batchResult wraps a batch-capable response with its status and item count.
func batchResult(data any, b transit.Batch) (*result, error) {
	return &result{data: data, status: b.Status(), items: max(b.Items, 1)}, nil
}

func (s *Server) listKeys(c *call) (*result, error) {
	r, err := c.engine().ListKeys(c.context())
	if err != nil {
		return nil, err
	}
	if len(r.Keys) == 0 {
		// Vault answers an empty list with 404.
		return nil, &httpError{http.StatusNotFound, ""}
	}
	return ok(r)
}

func (s *Server) createKey(c *call) (*result, error) {
	var req transit.CreateKeyRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	r, err := c.engine().CreateKey(c.context(), c.param("name"), &req)
	if err != nil {
		return nil, err
	}
	return ok(r)
}

func (s *Server) readKey(c *call) (*result, error) {
	r, err := c.engine().ReadKey(c.context(), c.param("name"))
	if err != nil {
		return nil, err
	}
	return ok(r)
}

func (s *Server) deleteKey(c *call) (*result, error) {
	if err := c.engine().DeleteKey(c.context(), c.param("name")); err != nil {
		return nil, err
	}
	return noContent()
}

func (s *Server) configKey(c *call) (*result, error) {
	var req transit.ConfigKeyRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	r, err := c.engine().ConfigKey(c.context(), c.param("name"), &req)
	if err != nil {
		return nil, err
	}
	return ok(r)
}

func (s *Server) rotateKey(c *call) (*result, error) {
	var req transit.RotateKeyRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	r, err := c.engine().RotateKey(c.context(), c.param("name"), &req)
	if err != nil {
		return nil, err
	}
	return ok(r)
}

func (s *Server) trimKey(c *call) (*result, error) {
	var req transit.TrimKeyRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	r, err := c.engine().TrimKey(c.context(), c.param("name"), &req)
	if err != nil {
		return nil, err
	}
	return ok(r)
}

func (s *Server) encrypt(c *call) (*result, error) {
	var req transit.EncryptRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	name := c.param("name")
	// Encrypting with a missing key creates it (Vault's upsert), which
	// needs the create capability: without it, the key must exist.
	if !c.acl.Allowed(c.path, policy.Create) {
		if _, err := c.engine().ReadKey(c.context(), name); err != nil {
			var te *transit.Error
			if errors.As(err, &te) && te.Status == http.StatusNotFound {
				return nil, &httpError{http.StatusForbidden, msgDenied}
			}
			return nil, err
		}
	}
	r, err := c.engine().Encrypt(c.context(), name, &req)
	if err != nil {
		return nil, err
	}
	return batchResult(r, r.Batch)
}

func (s *Server) decrypt(c *call) (*result, error) {
	var req transit.DecryptRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	r, err := c.engine().Decrypt(c.context(), c.param("name"), &req)
	if err != nil {
		return nil, err
	}
	return batchResult(r, r.Batch)
}

func (s *Server) rewrap(c *call) (*result, error) {
	var req transit.RewrapRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	r, err := c.engine().Rewrap(c.context(), c.param("name"), &req)
	if err != nil {
		return nil, err
	}
	return batchResult(r, r.Batch)
}

func (s *Server) dataKey(plaintext bool) func(c *call) (*result, error) {
	return func(c *call) (*result, error) {
		var req transit.DataKeyRequest
		if err := c.decode(&req); err != nil {
			return nil, err
		}
		r, err := c.engine().DataKey(c.context(), c.param("name"), plaintext, &req)
		if err != nil {
			return nil, err
		}
		return ok(r)
	}
}

func (s *Server) sign(c *call) (*result, error) {
	var req transit.SignRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if h := c.param("hash_algorithm"); h != "" {
		req.HashAlgorithm = h
	}
	r, err := c.engine().Sign(c.context(), c.param("name"), &req)
	if err != nil {
		return nil, err
	}
	return batchResult(r, r.Batch)
}

func (s *Server) verify(c *call) (*result, error) {
	var req transit.VerifyRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if h := c.param("hash_algorithm"); h != "" {
		req.HashAlgorithm = h
	}
	r, err := c.engine().Verify(c.context(), c.param("name"), &req)
	if err != nil {
		return nil, err
	}
	return batchResult(r, r.Batch)
}

func (s *Server) hmac(c *call) (*result, error) {
	var req transit.HMACRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if a := c.param("algorithm"); a != "" {
		req.Algorithm = a
	}
	r, err := c.engine().HMAC(c.context(), c.param("name"), &req)
	if err != nil {
		return nil, err
	}
	return batchResult(r, r.Batch)
}

func (s *Server) random(c *call) (*result, error) {
	var req transit.RandomRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	// random/:bytes is a count, or a source (random/seal); random/:source/:bytes both.
	if v := c.param("source"); v != "" {
		req.Source = v
	}
	if v := c.param("bytes"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			req.Bytes = transit.Int(n)
		} else if c.param("source") == "" {
			req.Source = v
		} else {
			return nil, badRequest("bytes in the path must be a number")
		}
	}
	r, err := c.engine().Random(c.context(), &req)
	if err != nil {
		return nil, err
	}
	return ok(r)
}
