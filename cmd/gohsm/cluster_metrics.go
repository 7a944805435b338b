package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/gohsm/gohsm/firmware-sim/server"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gohsm/gohsm/firmware-sim/cluster"
)

// The appliance's Prometheus endpoint: `metrics = HOST:PORT` in the
// configuration, --metrics ADDR in dev mode. GET /metrics answers the text
// exposition format (client_golang's promhttp): for a cluster member its
// own raft and store view (gohsm_cluster_*, firmware-sim/cluster
// metrics.go; the names of gohsm cluster metrics), and the Go runtime and
// process (go_*, process_*). Each member is its own scrape target.
//
// Who may scrape: on a loopback address plain HTTP (whoever runs on the
// machine; dev mode only allows loopback). On any other address the
// endpoint speaks TLS 1.3 with the appliance's own certificate (tls_cert,
// tls_key) and requires a client certificate from client_ca, as the
// appliance port does: raft indexes and membership are not for the
// network at large, and a second CA for one endpoint would be one more
// thing to get wrong.
//
// Not there yet: the appliance's own connection, in-flight call and busy
// counts (firmware-sim/server keeps them internally, without an accessor).

// metricsServer is the running endpoint.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// startMetrics listens on addr and serves /metrics; node is nil for an
// appliance that is not a cluster member.
func startMetrics(cfg *serveConfig, addr string, node *cluster.Node, stats func() server.Stats, logger *log.Logger) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if node != nil {
		reg.MustRegister(node.Collector())
	}
	if stats != nil {
		reg.MustRegister(applianceCollectors(stats)...)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(logger.Writer(), logger.Prefix()+"metrics: ", log.LstdFlags)}
	loop, err := loopbackOnly(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics %q: %w", addr, err)
	}
	scheme := "http"
	if !loop {
		tc, err := serverTLS(cfg, logger, time.Now())
		if err != nil {
			return nil, fmt.Errorf("metrics on %s (not loopback: TLS with client certificates): %w", addr, err)
		}
		srv.TLSConfig = tc
		scheme = "https"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	ms := &metricsServer{srv: srv, ln: ln, done: make(chan error, 1)}
	go func() { ms.done <- srv.Serve(ln) }()
	how := "plain HTTP, loopback"
	if !loop {
		how = "TLS 1.3, client certificates from " + cfg.ClientCA
	}
	logger.Printf("metrics on %s://%s/metrics (%s)", scheme, ln.Addr(), how)
	return ms, nil
}

// Addr is the endpoint's address.
func (m *metricsServer) Addr() net.Addr { return m.ln.Addr() }

func (m *metricsServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if serr := <-m.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// loopbackOnly reports whether every address host names is a loopback
// address (localhost, 127.0.0.0/8, ::1); an empty host (every interface)
// is not.
func loopbackOnly(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("want HOST:PORT (%v)", err)
	}
	if host == "" {
		return false, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback(), nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(context.Background(), host)
	if err != nil {
		return false, err
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false, nil
		}
	}
	return len(ips) > 0, nil
}

// startMetrics starts the appliance's metrics endpoint on addr ("" none);
// shutdown stops it.
func (a *appliance) startMetrics(addr string, node *cluster.Node) error {
	if addr == "" {
		return nil
	}
	m, err := startMetrics(a.cfg, addr, node, a.srv.Stats, a.logger)
	if err != nil {
		return err
	}
	a.metrics = m
	return nil
}

// applianceCollectors are the appliance's own series: what a member's
// clients weigh when they pick the least busy one (its connections and
// calls in flight), and the busy answers that say it is saturated.
func applianceCollectors(stats func() server.Stats) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gohsm_appliance_connections",
			Help: "Client connections past the handshake (each one an engine)."},
			func() float64 { return float64(stats().Conns) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gohsm_appliance_calls_in_flight",
			Help: "Calls being run or queued, over all connections."},
			func() float64 { return float64(stats().Calls) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gohsm_appliance_busy_total",
			Help: "Calls answered busy (CKR_DEVICE_MEMORY with the not-run flag) since the start."},
			func() float64 { return float64(stats().Busy) }),
	}
}
