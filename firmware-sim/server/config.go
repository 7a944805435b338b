package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm"
)

// Config is what a Server is built from. DefaultConfig fills the limits;
// the caller supplies TLS, Authorize and Open.
type Config struct {
	// TLS holds the server certificate and ClientCAs, the CA that client
	// certificates must chain to. Serve enforces TLS 1.3 and
	// tls.RequireAndVerifyClientCert whatever this says, on a clone.
	// ServeConn does not use it (the caller did the TLS, or a test runs on
	// a pipe).
	TLS *tls.Config

	// Authorize maps a verified client certificate to an identity, the
	// partitions (token labels; "*" is every token) it may use, and whether
	// it is an administrator (sees the free uninitialised slot and may
	// C_InitToken). ok false refuses the peer: the connection is closed
	// after the TLS handshake, before one byte of protocol.
	Authorize func(cert *x509.Certificate) (identity string, partitions []string, admin bool, ok bool)

	// Open makes an engine for a connection of identity, not yet
	// initialised: each connection is one PKCS#11 application with its
	// own login state (as each process that loads libgohsm.so is), so one
	// client's C_Login or C_Logout never changes another's, even under the
	// same certificate. The server calls Open when the connection's
	// handshake is done, Initialize on the result, and when the connection
	// ends (or at Shutdown) Finalize and then Close if the backend is an
	// io.Closer (StoreOpener's are: they close their store).
	Open func(identity string) (hsm.Backend, error)

	// WrapBackend, if set, wraps each identity's initialised engine; every
	// call a client makes goes through the wrapper (the audit log's hook).
	WrapBackend func(identity string, be hsm.Backend) hsm.Backend

	// MaxFrame is the largest frame payload accepted from a client (and
	// announced in WELCOME); a larger header gets GOAWAY and the connection
	// is closed without reading the payload.
	MaxFrame int
	// MaxCallsPerConn bounds the calls a connection may have in flight
	// (queued behind its session or running); one more is answered busy.
	// It is a scheduling limit, not a memory one (MaxBytesPerConn is): a
	// queued call costs little but its payload, and a client that batches
	// needs more calls queued than the cores can run in the ~10 ms Go
	// takes to poll the network while every core computes, or its window
	// drains before the next calls are read (docs/bench-remote.md).
	MaxCallsPerConn int
	// MaxCallsTotal bounds the calls in flight over all connections.
	MaxCallsTotal int
	// MaxBytesPerConn bounds the payload bytes of a connection's calls in
	// flight, MaxBytesTotal those of all connections: what the calls
	// waiting to run hold in memory. A call that would pass either is
	// answered busy, as one past the call limits is. Both are at least
	// MaxFrame, so that a call of any size the server accepts can run.
	MaxBytesPerConn int
	MaxBytesTotal   int
	// MaxConns bounds open connections; more are closed at accept.
	MaxConns int
	// MaxSessionsPerConn bounds the sessions one connection may hold open
	// (each costs the engine memory); C_OpenSession beyond it answers
	// CKR_SESSION_COUNT.
	MaxSessionsPerConn int

	// CallTimeout is the per-call deadline: a call not answered in this
	// time is answered busy if it never started, CKR_DEVICE_ERROR if it did
	// (its outcome is unknown; the engine cannot be interrupted, and its
	// late result is dropped).
	CallTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake and the HELLO together.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that sends no frame for this long
	// (clients send PING well within it).
	IdleTimeout time.Duration
	// FrameTimeout bounds the arrival of a frame once its first byte came,
	// and each write to a client: a peer that dribbles a frame, or stops
	// reading, is cut off.
	FrameTimeout time.Duration

	// Cluster hooks (docs/cluster.md); both nil for a lone appliance.
	//
	// Unavailable reports an engine error that means "this member cannot
	// serve the call now, another member may": the member cannot reach
	// its cluster's leader (cluster.Unavailable). The answer keeps its
	// return code and, on a version-2 connection, carries
	// wire.FlagTryElsewhere, so that a client tells it apart from a real
	// device error and moves to another member.
	Unavailable func(err error) bool
	// Serving reports whether the member can serve calls that need its
	// cluster now (it knows a leader: cluster.Node.Serving); false sets
	// wire.StatusNoLeader in WELCOME, and clients choosing a member
	// prefer others.
	Serving func() bool

	// Name is the appliance's name in WELCOME.
	Name string
	// Logf, if set, receives operational messages: connections, refusals,
	// protocol errors. It never receives a PIN, a key, or call data.
	Logf func(format string, args ...any)
}

// DefaultConfig returns the default limits.
func DefaultConfig() Config {
	return Config{
		MaxFrame:           wire.DefaultMaxFrame,
		MaxCallsPerConn:    1024,
		MaxCallsTotal:      4096,
		MaxBytesPerConn:    64 << 20,
		MaxBytesTotal:      512 << 20,
		MaxConns:           1024,
		MaxSessionsPerConn: 4096,
		CallTimeout:        60 * time.Second,
		HandshakeTimeout:   10 * time.Second,
		IdleTimeout:        60 * time.Second,
		FrameTimeout:       30 * time.Second,
		Name:               "gohsm appliance",
	}
}

// Validate reports a configuration the server cannot run with. TLS is
// checked by Serve, which needs it; ServeConn does not.
func (c *Config) Validate() error {
	var errs []error
	if c.Authorize == nil {
		errs = append(errs, errors.New("no Authorize function"))
	}
	if c.Open == nil {
		errs = append(errs, errors.New("no Open function"))
	}
	if c.MaxFrame < wire.MinMaxFrame || c.MaxFrame > 1<<30 {
		errs = append(errs, fmt.Errorf("MaxFrame %d outside %d..%d", c.MaxFrame, wire.MinMaxFrame, 1<<30))
	}
	if c.MaxCallsPerConn < 1 || c.MaxCallsTotal < 1 || c.MaxConns < 1 || c.MaxSessionsPerConn < 1 {
		errs = append(errs, fmt.Errorf("limits must be positive (calls per connection %d, calls %d, connections %d, sessions per connection %d)",
			c.MaxCallsPerConn, c.MaxCallsTotal, c.MaxConns, c.MaxSessionsPerConn))
	}
	if c.MaxBytesPerConn < c.MaxFrame || c.MaxBytesTotal < c.MaxBytesPerConn {
		errs = append(errs, fmt.Errorf("byte limits must satisfy MaxFrame %d <= MaxBytesPerConn %d <= MaxBytesTotal %d",
			c.MaxFrame, c.MaxBytesPerConn, c.MaxBytesTotal))
	}
	for name, d := range map[string]time.Duration{"CallTimeout": c.CallTimeout, "HandshakeTimeout": c.HandshakeTimeout,
		"IdleTimeout": c.IdleTimeout, "FrameTimeout": c.FrameTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v must be positive", name, d))
		}
	}
	if len(c.Name) > wire.MaxName {
		errs = append(errs, fmt.Errorf("Name longer than %d bytes", wire.MaxName))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server config: %w", err)
	}
	return nil
}

// serverTLS is the configuration Serve uses: the caller's, with TLS 1.3
// only and a verified client certificate required.
func (c *Config) serverTLS() (*tls.Config, error) {
	if c.TLS == nil {
		return nil, errors.New("server config: no TLS configuration")
	}
	t := c.TLS.Clone()
	if len(t.Certificates) == 0 && t.GetCertificate == nil && t.GetConfigForClient == nil {
		return nil, errors.New("server config: TLS has no server certificate")
	}
	if t.ClientCAs == nil {
		return nil, errors.New("server config: TLS has no ClientCAs to verify clients against")
	}
	t.MinVersion = tls.VersionTLS13
	t.MaxVersion = tls.VersionTLS13
	t.ClientAuth = tls.RequireAndVerifyClientCert
	// A certificate the CA signed but the configuration does not name is
	// refused inside the handshake, with the TLS alert, as one from
	// another CA is: the client learns at once that its certificate will
	// not do (and stops retrying), and still gets no protocol byte.
	authorize := c.Authorize
	verify := func(next func(tls.ConnectionState) error) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error {
			if next != nil {
				if err := next(cs); err != nil {
					return err
				}
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			if _, _, _, ok := authorize(cs.PeerCertificates[0]); !ok {
				return fmt.Errorf("client certificate %q not authorised", cs.PeerCertificates[0].Subject.String())
			}
			return nil
		}
	}
	t.VerifyConnection = verify(t.VerifyConnection)
	// GetConfigForClient could hand back a config without these; the
	// server's own settings must hold for every handshake.
	if g := t.GetConfigForClient; g != nil {
		t.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			cc, err := g(hi)
			if err != nil || cc == nil {
				return cc, err
			}
			cc = cc.Clone()
			cc.MinVersion, cc.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
			cc.ClientAuth = tls.RequireAndVerifyClientCert
			cc.VerifyConnection = verify(cc.VerifyConnection)
			if cc.ClientCAs == nil {
				cc.ClientCAs = t.ClientCAs
			}
			return cc, nil
		}
	}
	t.NextProtos = []string{"gohsm/1"}
	return t, nil
}
