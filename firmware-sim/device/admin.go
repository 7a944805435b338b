package device

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// The admin socket, D/admin.sock (mode 0600, in the 0700 store directory):
// the running appliance's custody door, for the tools on its own machine.
// One JSON request per line, one JSON response per line:
//
//	{"op": "status"}
//	{"op": "unseal", "share": {share file, opened}}    a custodian presents a share
//	{"op": "seal"}                                     back to sealed
//	{"op": "tamper", "reason": "..."}                  zeroise
//	{"op": "install", "image": {image file}}           install a firmware image
//	{"op": "adopt"}                                    adopt the store's unsealed tokens
//
// Who may connect is decided by the file's permissions (the appliance's
// own user), as for a local console: a share, not the connection,
// authenticates an unseal, and a tamper is a button anyone at the device
// may press.

// AdminRequest is one request.
type AdminRequest struct {
	Op     string          `json:"op"`
	Share  *Share          `json:"share,omitempty"`
	Image  json.RawMessage `json:"image,omitempty"`
	Reason string          `json:"reason,omitempty"`
}

// AdminResponse is one response.
type AdminResponse struct {
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	Info     Info      `json:"info"`
	Progress *Progress `json:"progress,omitempty"`
	Message  string    `json:"message,omitempty"`
}

// ServeAdmin listens on path for admin requests to d until stop. A stale
// socket file (nothing answers) is replaced; a live one is an error.
func ServeAdmin(d *Device, path string) (stop func() error, err error) {
	if c, err := AdminDial(path); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: another appliance answers on it", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveAdminConn(d, c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	return func() error {
		err := ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		os.Remove(path)
		return err
	}, nil
}

func serveAdminConn(d *Device, c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	enc := json.NewEncoder(c)
	for {
		c.SetReadDeadline(time.Now().Add(5 * time.Minute))
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var req AdminRequest
		resp := AdminResponse{}
		if err := json.Unmarshal(line, &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			resp = d.Admin(req)
		}
		if err := enc.Encode(&resp); err != nil {
			return
		}
	}
}

// Admin runs one admin request.
func (d *Device) Admin(req AdminRequest) AdminResponse {
	var resp AdminResponse
	var err error
	switch req.Op {
	case "status":
	case "unseal":
		if req.Share == nil {
			err = errors.New("unseal: no share")
			break
		}
		var p Progress
		p, err = d.Present(req.Share)
		resp.Progress = &p
	case "seal":
		err = d.Seal("by the admin socket")
	case "tamper":
		why := req.Reason
		if why == "" {
			why = "tamper (admin socket)"
		}
		err = d.Zeroise(why)
	case "install":
		var m *Manifest
		if m, err = d.Install(req.Image); err == nil {
			resp.Message = fmt.Sprintf("installed firmware %s svn %d; the minimum security version is now %d", m.Version, m.SVN, d.Info().MinSVN)
		}
	case "adopt":
		var labels []string
		if labels, err = d.Adopt(); err == nil {
			resp.Message = fmt.Sprintf("adopted %d token(s) %q", len(labels), labels)
		}
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	resp.OK = err == nil
	if err != nil {
		resp.Error = err.Error()
	}
	resp.Info = d.Info()
	return resp
}

// AdminDial connects to an appliance's admin socket.
func AdminDial(path string) (net.Conn, error) {
	return net.DialTimeout("unix", path, 2*time.Second)
}

// AdminCall sends one request to the admin socket at path.
func AdminCall(path string, req AdminRequest) (*AdminResponse, error) {
	c, err := AdminDial(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := json.NewEncoder(c).Encode(&req); err != nil {
		return nil, err
	}
	var resp AdminResponse
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
