package cluster

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Devices. An appliance with a device (firmware-sim/device: sealed
// lifecycle, M-of-N unseal) seals every token record under its device key
// (hsm.Config.DeviceKey), and the records are what the log replicates; a
// member with another device key, or none, could not open them. So every
// member must have the same device: the same device record (id, the
// master key's check value, the secret S), unsealed with the same
// custodians' shares (docs/cluster.md, "Devices").
//
// Members compare fingerprints, never keys: Config.Device is the device's
// KeyFingerprint (a PRF of S over the device id and the master key's check
// value, computable while sealed), "" for a member without a device. The
// member that takes a join request (and the leader it forwards to)
// refuses a joiner whose fingerprint differs from its own; a member with
// raft state checks against the other members at start (CheckDevice), so
// a member whose device was replaced is refused too.

const deviceMismatchMsg = "cluster: device key differs"

// ErrDeviceMismatch is the refusal of a member whose device key differs
// from the cluster's.
var ErrDeviceMismatch = errors.New(deviceMismatchMsg)

// sameDevice checks a peer's fingerprint against this member's.
func (n *Node) sameDevice(id, peer string) error {
	if subtle.ConstantTimeCompare([]byte(peer), []byte(n.cfg.Device)) == 1 {
		return nil
	}
	return fmt.Errorf("%w: member %s has %s, this cluster (member %s) has %s: every member needs the same device (copy the device record from a member and unseal it with the same shares; docs/cluster.md, \"Devices\")",
		ErrDeviceMismatch, id, describeDevice(peer), n.cfg.ID, describeDevice(n.cfg.Device))
}

func describeDevice(fp string) string {
	if fp == "" {
		return "no device"
	}
	return "device key " + fp
}

// CheckDevice compares this member's device fingerprint with every other
// member of the configuration that answers (at least one must, within
// timeout, if there are others): a member restarted with another device
// is refused whether it follows or leads.
func (n *Node) CheckDevice(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		checked, err := n.checkPeersDevice(deadline)
		if errors.Is(err, ErrDeviceMismatch) || (err == nil && checked) {
			return err
		}
		if time.Until(deadline) < 50*time.Millisecond {
			if err == nil {
				err = errors.New("no other member answered")
			}
			return fmt.Errorf("cluster: device check: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPeersDevice asks the other members of the configuration for their
// status, all at once (a hung member costs one timeout, not one each);
// checked is false if there were others and none answered.
func (n *Node) checkPeersDevice(deadline time.Time) (checked bool, err error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return false, err
	}
	servers := f.Configuration().Servers
	if len(servers) == 0 {
		// Restarted before its log had the configuration: it learns it
		// from the leader shortly.
		return false, errors.New("no raft configuration yet")
	}
	type answer struct {
		st  Status
		err error
	}
	answers := make(chan answer, len(servers))
	others := 0
	for _, s := range servers {
		if string(s.ID) == n.cfg.ID {
			continue
		}
		others++
		go func(addr string) {
			st, err := n.peerStatus(addr, min(2*time.Second, time.Until(deadline)))
			answers <- answer{st, err}
		}(string(s.Address))
	}
	if others == 0 {
		return true, nil
	}
	var lastErr error
	for range others {
		a := <-answers
		if a.err != nil {
			lastErr = a.err
			continue
		}
		checked = true
		if subtle.ConstantTimeCompare([]byte(a.st.Device), []byte(n.cfg.Device)) != 1 {
			return true, fmt.Errorf("%w: this member (%s) has %s, member %s has %s: every member needs the same device (docs/cluster.md, \"Devices\")",
				ErrDeviceMismatch, n.cfg.ID, describeDevice(n.cfg.Device), a.st.ID, describeDevice(a.st.Device))
		}
	}
	if checked {
		return true, nil
	}
	return false, lastErr
}

// peerStatus is another member's Status.
func (n *Node) peerStatus(addr string, timeout time.Duration) (Status, error) {
	c, err := n.client(addr)
	if err != nil {
		return Status{}, err
	}
	var st Status
	if err := callTimeout(c, "Member.Status", struct{}{}, &st, timeout); err != nil {
		if strings.Contains(err.Error(), "shut down") || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			n.dropClient(addr, c)
		}
		return Status{}, err
	}
	return st, nil
}

// DeviceRecord is a member's device record (firmware-sim/device Record):
// the state file and the secret S. With it and the same custodians'
// shares a new member derives the cluster's device key; without the
// shares it opens nothing. Only a holder of a cluster certificate can ask
// for it (the raft port's mutual TLS), which puts the cluster CA inside
// the device's trust boundary: docs/cluster.md, "Devices".
type DeviceRecord struct {
	State, Secret []byte
}

// DeviceRecord answers a member's request for the device record.
func (m *memberRPC) DeviceRecord(_ struct{}, rec *DeviceRecord) error {
	if err := m.n.started(); err != nil {
		return err
	}
	if m.n.cfg.DeviceRecord == nil || m.n.cfg.Device == "" {
		return fmt.Errorf("cluster: member %s has no device to copy", m.n.cfg.ID)
	}
	r, err := m.n.cfg.DeviceRecord()
	if err != nil {
		return err
	}
	m.n.cfg.Logf("cluster: device record sent to a cluster certificate holder (gohsm cluster device-copy)")
	*rec = *r
	// net/rpc encodes the reply after this returns; the copy it encodes is
	// the caller's to drop.
	return nil
}

// DeviceRecord fetches the member's device record (gohsm cluster
// device-copy); the caller wipes Secret.
func (c *Client) DeviceRecord() (*DeviceRecord, error) {
	var rec DeviceRecord
	if err := callTimeout(c.c, "Member.DeviceRecord", struct{}{}, &rec, c.timeout); err != nil {
		return nil, err
	}
	return &rec, nil
}
