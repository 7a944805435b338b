package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Config is what a Client is built from.
type Config struct {
	// Address is the appliance, host:port, or the members of a cluster,
	// host:port,host:port,... (docs/cluster.md): the client connects to
	// the least loaded member that can serve (members.go: each member's
	// load, probed at every connection), moves to another when its member
	// dies or cannot reach its cluster's leader, and returns to a
	// recovered or less busy member at a safe moment (Rebalance); the
	// sessions follow (the reconnection re-opens and re-logs in them, and
	// token object handles are the same on every member).
	Address string
	// TLS is the client side of the mutual TLS: the client certificate and
	// RootCAs, the appliance's CA. TLS 1.3 is enforced on a clone.
	// LoadTLS builds it from PEM files. Unused with a Dialer.
	TLS *tls.Config
	// Dialer, if set, replaces TCP and TLS: it returns a connection already
	// secured (or a pipe, in tests). NewWithDialer sets it.
	Dialer func(ctx context.Context) (io.ReadWriteCloser, error)

	// Timeout bounds every call while the appliance is unreachable: a call
	// that cannot get onto a working connection within Timeout of its start
	// fails with CKR_DEVICE_ERROR; it also bounds each connection attempt
	// and C_Initialize's wait for the first connection, and a silent
	// connection is declared dead after it (keepalive).
	Timeout time.Duration
	// KeepAlive is the PING interval on a quiet connection; 0 means
	// Timeout/3 (and at most a third of the server's idle timeout).
	KeepAlive time.Duration
	// BackoffMin and BackoffMax bound the wait between reconnection
	// attempts (doubling, with jitter).
	BackoffMin, BackoffMax time.Duration
	// MaxInFlight caps the calls in flight on the connection (the server's
	// own cap, announced in WELCOME, applies too); more wait in the queue.
	// The default matches the server's default (1,024): a batch keeps
	// that many queued on the appliance, enough that its cores never run
	// dry while Go gets round to reading the next calls.
	MaxInFlight int
	// CoalesceDelay, if positive, lets the writer wait that long for more
	// calls before it sends a lone one, so that more calls share a BATCH.
	// 0 sends what is queued as soon as the writer is free (measured the
	// better default: see the package documentation). Tests and
	// measurements only.
	CoalesceDelay time.Duration
	// Rebalance is how often a client of a cluster (several addresses)
	// probes the members' liveness and load, to return to a recovered
	// member or leave one busier than another by a clear margin; it moves
	// only when it loses nothing (no session object, no operation in
	// progress, no call in flight: rebalance.go). 0 means 30 s; negative
	// turns it off. Unused with one address or a Dialer.
	Rebalance time.Duration
	// WaitInKernel makes a caller wait for its answer in the kernel (a
	// futex the reader wakes directly) instead of parking its goroutine.
	// It is for callers that are threads of a C application (libgohsm.so
	// sets it): a cgo caller's goroutine is locked to its thread, and the
	// Go scheduler parks and wakes a locked thread by handing its P over,
	// several wake-ups of several threads where the futex costs one
	// (docs/bench-remote.md). Not for Go programs: each waiting goroutine
	// would hold an OS thread. Linux only; ignored elsewhere.
	WaitInKernel bool
	// RetryBusy re-sends, with backoff, a call the appliance answered busy
	// (not run), until the call's Timeout; the application then sees
	// CKR_DEVICE_MEMORY. Off, the busy answer is returned at once.
	RetryBusy bool
	// Name says who the client is, in the appliance's log.
	Name string
	// Logf, if set, receives connection events (never a PIN, a key or data).
	Logf func(format string, args ...any)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	name := "gohsm client"
	if exe, err := os.Executable(); err == nil {
		name = fmt.Sprintf("gohsm client (%s, pid %d)", exe, os.Getpid())
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return Config{
		Timeout:     5 * time.Second,
		Rebalance:   defaultRebalance,
		BackoffMin:  50 * time.Millisecond,
		BackoffMax:  2 * time.Second,
		MaxInFlight: 1024,
		RetryBusy:   true,
		Name:        name,
	}
}

// defaultRebalance is the rebalancing check's default interval: a probe
// of every member (a TLS handshake each, no engine) per client per interval
// costs the members little, and a recovered member gets its share back
// within about a minute.
const defaultRebalance = 30 * time.Second

// rebalanceEvery is the rebalancing interval, 0 when off.
func (c *Config) rebalanceEvery() time.Duration {
	switch {
	case c.Rebalance < 0:
		return 0
	case c.Rebalance == 0:
		return defaultRebalance
	}
	return c.Rebalance
}

// Validate reports a configuration the client cannot run with.
func (c *Config) Validate() error {
	var errs []error
	if c.Dialer == nil {
		if c.Address == "" {
			errs = append(errs, errors.New("no address"))
		} else {
			for _, a := range c.addresses() {
				if _, _, err := net.SplitHostPort(a); err != nil {
					errs = append(errs, fmt.Errorf("address %q: %w", a, err))
				}
			}
		}
		if c.TLS == nil {
			errs = append(errs, errors.New("no TLS configuration"))
		} else {
			if c.TLS.RootCAs == nil {
				errs = append(errs, errors.New("TLS: no CA (RootCAs) to verify the appliance with"))
			}
			if len(c.TLS.Certificates) == 0 && c.TLS.GetClientCertificate == nil {
				errs = append(errs, errors.New("TLS: no client certificate"))
			}
		}
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %v must be positive", c.Timeout))
	}
	if c.KeepAlive < 0 || c.CoalesceDelay < 0 {
		errs = append(errs, errors.New("negative keepalive or coalescing delay"))
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff %v..%v", c.BackoffMin, c.BackoffMax))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("MaxInFlight %d must be positive", c.MaxInFlight))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	return nil
}

// LoadTLS builds the client's TLS configuration from PEM files: caFile, the
// appliance's CA; certFile and keyFile, the client certificate and its key.
// serverName is the name the appliance's certificate must carry; "" takes
// the host of address.
func LoadTLS(caFile, certFile, keyFile, serverName, address string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca %s: no PEM certificate", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	if serverName == "" && strings.Contains(address, ",") {
		// A cluster: each member's own host (the dialer sets it).
	} else if serverName == "" {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", address, err)
		}
		serverName = host
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: serverName,
		MinVersion: tls.VersionTLS13}, nil
}

// clientTLS is the caller's configuration with TLS 1.3 enforced.
func (c *Config) clientTLS() *tls.Config {
	t := c.TLS.Clone()
	t.MinVersion, t.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	t.NextProtos = []string{"gohsm/1"}
	if t.ServerName == "" {
		if host, _, err := net.SplitHostPort(c.Address); err == nil {
			t.ServerName = host
		}
	}
	return t
}

// addresses is Address as a list (one entry for a single appliance).
func (c *Config) addresses() []string {
	var out []string
	for _, a := range strings.Split(c.Address, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// tcpDialer dials the appliance over TCP and TLS 1.3. The client uses it
// for one address; with several (a cluster) it uses members.go, which
// chooses by load. Given several addresses it starts at a random one and
// stays on a member while it answers; a dial that fails moves on to the
// next.
func (c *Config) tcpDialer() func(ctx context.Context) (io.ReadWriteCloser, error) {
	tcfg := c.clientTLS()
	addrs := c.addresses()
	var mu sync.Mutex
	cur := mrand.IntN(len(addrs))
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		mu.Lock()
		start := cur
		mu.Unlock()
		var errs []error
		for i := range addrs {
			k := (start + i) % len(addrs)
			nc, err := dialTLS(ctx, tcfg, addrs[k], len(addrs) > 1)
			if err == nil {
				mu.Lock()
				cur = k
				mu.Unlock()
				return nc, nil
			}
			if len(addrs) == 1 {
				return nil, err
			}
			errs = append(errs, fmt.Errorf("%s: %w", addrs[k], err))
			if ctx.Err() != nil {
				break
			}
		}
		mu.Lock()
		cur = (start + 1) % len(addrs) // next time, begin elsewhere
		mu.Unlock()
		return nil, errors.Join(errs...)
	}
}

// dialTLS dials one appliance. In a list each member is dialed with at most
// a third of the attempt's time, so that a dead (not refusing) member does
// not use up the whole attempt.
func dialTLS(ctx context.Context, tcfg *tls.Config, addr string, member bool) (io.ReadWriteCloser, error) {
	conf := tcfg
	if conf.ServerName == "" {
		conf = tcfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			conf.ServerName = host
		}
	}
	if dl, ok := ctx.Deadline(); ok && member {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(time.Until(dl)/3, 100*time.Millisecond))
		defer cancel()
	}
	d := tls.Dialer{Config: conf, NetDialer: &net.Dialer{KeepAlive: 15 * time.Second}}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*tls.Conn); ok {
		if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
			tcp.SetNoDelay(true)
		}
	}
	return nc, nil
}
