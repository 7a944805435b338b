package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"
)

// recordVersion is the stored record's format version.
const recordVersion = 1

// Limits on what a token carries (checked at Create and again when a
// record is decoded, so a damaged record cannot make a huge token).
const (
	maxPolicies    = 64
	maxPolicyName  = 128
	maxMeta        = 64
	maxMetaKey     = 128
	maxMetaValue   = 512
	maxDisplayName = 128
	maxRecord      = 64 << 10
)

// record is a token as stored: everything but the secret.
type record struct {
	V           int               `json:"v"`
	Hash        string            `json:"hash"` // hashSecret(secret)
	Accessor    string            `json:"accessor"`
	Policies    []string          `json:"policies"`
	DisplayName string            `json:"display_name"`
	Meta        map[string]string `json:"meta,omitempty"`
	Parent      string            `json:"parent,omitempty"`      // parent's accessor
	ParentHash  string            `json:"parent_hash,omitempty"` // parent's hash: the chain check
	Path        string            `json:"path"`
	Created     int64             `json:"created"`          // unix ns
	TTL         int64             `json:"ttl"`              // ns, at creation or last renewal
	Expire      int64             `json:"expire,omitempty"` // unix ns; 0: never
	MaxExpire   int64             `json:"max_expire,omitempty"`
	ExplicitMax int64             `json:"explicit_max_ttl,omitempty"`
	NumUses     int               `json:"num_uses,omitempty"`
	Renewable   bool              `json:"renewable,omitempty"`
}

func (r *record) encode() ([]byte, error) { return json.Marshal(r) }

// decodeRecord parses a stored record strictly: one JSON object, known
// members only, the version this code writes, and every field in range. A
// record that fails is treated as absent by Lookup (and reported), never as
// a token with defaults.
func decodeRecord(b []byte) (*record, error) {
	if len(b) > maxRecord {
		return nil, fmt.Errorf("token record of %d bytes, more than %d", len(b), maxRecord)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r record
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("token record: %v", err)
	}
	if dec.More() {
		return nil, errors.New("token record: trailing data")
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("token record: %v", err)
	}
	return &r, nil
}

func (r *record) validate() error {
	switch {
	case r.V != recordVersion:
		return fmt.Errorf("version %d, want %d", r.V, recordVersion)
	case !isHashHex(r.Hash):
		return errors.New("bad hash")
	case !validAccessor(r.Accessor):
		return errors.New("bad accessor")
	case r.Parent != "" && !validAccessor(r.Parent):
		return errors.New("bad parent accessor")
	case (r.Parent == "") != (r.ParentHash == ""):
		return errors.New("parent and parent_hash must come together")
	case r.ParentHash != "" && !isHashHex(r.ParentHash):
		return errors.New("bad parent hash")
	case r.ParentHash == r.Hash:
		return errors.New("a token cannot be its own parent")
	case len(r.Policies) > maxPolicies:
		return errors.New("too many policies")
	case len(r.Meta) > maxMeta:
		return errors.New("too much metadata")
	case len(r.DisplayName) > maxDisplayName:
		return errors.New("display name too long")
	case len(r.Path) > 64:
		return errors.New("path too long")
	case r.TTL < 0 || r.Expire < 0 || r.MaxExpire < 0 || r.ExplicitMax < 0 || r.NumUses < 0 || r.Created < 0:
		return errors.New("negative time or count")
	case r.Expire != 0 && r.Expire < r.Created:
		return errors.New("expires before it was created")
	}
	for _, p := range r.Policies {
		if p == "" || len(p) > maxPolicyName {
			return errors.New("bad policy name")
		}
	}
	for k, v := range r.Meta {
		if k == "" || len(k) > maxMetaKey || len(v) > maxMetaValue {
			return errors.New("bad metadata")
		}
	}
	return nil
}

// token builds the public view of a record.
func (r *record) token() *Token {
	t := &Token{
		Accessor:       r.Accessor,
		Policies:       append([]string(nil), r.Policies...),
		DisplayName:    r.DisplayName,
		Meta:           maps.Clone(r.Meta),
		Parent:         r.Parent,
		Orphan:         r.Parent == "",
		Path:           r.Path,
		CreationTime:   time.Unix(0, r.Created).UTC(),
		CreationTTL:    time.Duration(r.TTL),
		ExplicitMaxTTL: time.Duration(r.ExplicitMax),
		NumUses:        r.NumUses,
		Renewable:      r.Renewable,
		Type:           "service",
	}
	if r.Expire != 0 {
		t.ExpireTime = time.Unix(0, r.Expire).UTC()
	}
	return t
}

func isHashHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
