package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The raft port carries two kinds of connection, both mutual TLS 1.3 with
// certificates from the cluster CA (never the appliance's client CA: a
// client of the appliance is not a member). After the handshake the dialer
// sends one byte: 'R' for raft's own transport (NetworkTransport over
// streamLayer), 'F' for the member RPC (forwarded writes, read index,
// join, leave, status; rpc.go). A peer without a cluster certificate fails
// the handshake and gets nothing; a byte other than those two closes the
// connection.
const (
	muxRaft = 'R'
	muxRPC  = 'F'
)

// handshakeTimeout bounds a peer's TLS handshake and mux byte.
const handshakeTimeout = 10 * time.Second

// MemberTLS builds the TLS configuration of a member from the cluster CA
// (PEM) and the member's certificate and key: TLS 1.3 only, the peer must
// present a certificate that chains to the CA, on both sides. Names are not
// checked (members dial each other by address); membership is the CA's
// signature, so the cluster CA must sign member certificates only.
func MemberTLS(caPEM []byte, cert tls.Certificate) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("cluster: no PEM certificate in the cluster CA")
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("cluster: peer sent no certificate")
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("cluster: peer certificate: %w", err)
		}
		inter := x509.NewCertPool()
		for _, r := range raw[1:] {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return fmt.Errorf("cluster: peer chain: %w", err)
			}
			inter.AddCert(c)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			return fmt.Errorf("cluster: peer is not a member: %w", err)
		}
		return nil
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// Both sides verify the peer's chain themselves (verify): the
		// standard checks would also want a name (dialing side) or a
		// clientAuth key usage (accepting side).
		InsecureSkipVerify:    true,
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: verify,
		// verify is not called on a resumed session: no resumption, every
		// connection shows its certificate.
		SessionTicketsDisabled: true,
	}, nil
}

// mux accepts TLS connections on the raft port and hands each to raft or
// to the RPC server.
type mux struct {
	ln   net.Listener
	tls  *tls.Config
	adv  net.Addr
	raft chan net.Conn
	rpc  func(net.Conn)
	logf func(string, ...any)

	closeOnce sync.Once
	done      chan struct{}
}

func newMux(ln net.Listener, conf *tls.Config, adv net.Addr, rpc func(net.Conn), logf func(string, ...any)) *mux {
	m := &mux{ln: ln, tls: conf, adv: adv, raft: make(chan net.Conn, 16), rpc: rpc, logf: logf, done: make(chan struct{})}
	go m.serve()
	return m
}

func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			m.logf("cluster: accept: %v", err)
			return
		}
		go m.handle(c)
	}
}

func (m *mux) handle(c net.Conn) {
	tc := tls.Server(c, m.tls)
	tc.SetDeadline(time.Now().Add(handshakeTimeout))
	var b [1]byte
	err := tc.Handshake()
	if err == nil {
		_, err = tc.Read(b[:])
	}
	if err != nil {
		m.logf("cluster: refused %s: %v", c.RemoteAddr(), err)
		tc.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	switch b[0] {
	case muxRaft:
		select {
		case m.raft <- tc:
		case <-m.done:
			tc.Close()
		}
	case muxRPC:
		m.rpc(tc)
	default:
		tc.Close()
	}
}

// dial opens a TLS connection of kind k to a member.
func dialMember(addr string, conf *tls.Config, k byte, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, conf)
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return nil, err
	}
	if _, err := tc.Write([]byte{k}); err != nil {
		tc.Close()
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

func (m *mux) close() {
	m.closeOnce.Do(func() {
		close(m.done)
		m.ln.Close()
	})
}

// streamLayer is raft's view of the mux: raft connections only.
type streamLayer struct{ m *mux }

var _ raft.StreamLayer = streamLayer{}

func (s streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.m.raft:
		return c, nil
	case <-s.m.done:
		return nil, net.ErrClosed
	}
}

func (s streamLayer) Close() error { s.m.close(); return nil }

func (s streamLayer) Addr() net.Addr { return s.m.adv }

func (s streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialMember(string(addr), s.m.tls, muxRaft, timeout)
}
