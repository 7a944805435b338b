package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/firmware-sim/cluster"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Two `gohsm serve --dev --raft` processes: the first started with
// --raft-init wait does not serve until `gohsm cluster init`, which is then
// refused on it and on the member that joined; its --metrics endpoint
// parses as Prometheus text and agrees with `cluster status`; a token made
// through member A appears on a connection to member B opened before.
func TestClusterInitMetricsNewToken(t *testing.T) {
	base := t.TempDir()
	pc := &procCluster{t: t, pki: filepath.Join(base, "pki")}
	for i := range 2 {
		pc.members = append(pc.members, &procMember{i: i, dir: filepath.Join(base, fmt.Sprintf("m%d", i)),
			listen: freePort(t), raftA: freePort(t)})
	}
	t.Cleanup(pc.stopAll)
	a := pc.members[0]
	metricsAddr := freePort(t)
	a.extra = []string{"--raft-init", "wait", "--metrics", metricsAddr}

	up := make(chan struct{})
	go func() { pc.start(0, ""); close(up) }()
	addrFile := filepath.Join(a.dir, raftSubdir, "addr")
	for i := 0; ; i++ {
		if _, err := os.Stat(addrFile); err == nil {
			break
		}
		if i > 600 {
			t.Fatalf("no %s after 60 s:\n%s", addrFile, a.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, err := pc.status(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 0 || st.Leader != "" {
		t.Fatalf("a member waiting for init: members %v, leader %q", st.Members, st.Leader)
	}
	var status bytes.Buffer
	if err := clusterMain([]string{"status", "--dir", a.dir}, &status); err != nil || !strings.Contains(status.String(), "waits for gohsm cluster init") {
		t.Fatalf("cluster status of a waiting member: %v %q", err, status.String())
	}
	select {
	case <-up:
		t.Fatal("the member serves before cluster init")
	default:
	}

	var out bytes.Buffer
	if err := clusterMain([]string{"init", "--dir", a.dir}, &out); err != nil {
		t.Fatalf("cluster init: %v\n%s", err, a.log.String())
	}
	if !strings.Contains(out.String(), "cluster initialised") {
		t.Fatalf("cluster init said %q", out.String())
	}
	select {
	case <-up:
	case <-time.After(60 * time.Second):
		t.Fatalf("not serving after init:\n%s", a.log.String())
	}
	pc.start(1, a.raftA)
	for _, m := range pc.members {
		err := clusterMain([]string{"init", "--dir", m.dir}, &out)
		if !errors.Is(err, cluster.ErrAlreadyInitialised) || !strings.Contains(err.Error(), "2 member(s)") {
			t.Fatalf("second init through member %d: %v", m.i, err)
		}
	}

	// Metrics: the endpoint against cluster status, on a quiet cluster
	// (asked again if an entry moved the indexes in between).
	for try := 0; ; try++ {
		before, err := pc.status(0)
		if err != nil {
			t.Fatal(err)
		}
		fams := scrapeMetrics(t, "http://"+metricsAddr+"/metrics")
		after, err := pc.status(0)
		if err != nil {
			t.Fatal(err)
		}
		if before.CommitIndex != after.CommitIndex || before.StoreApplied != after.StoreApplied || before.Term != after.Term {
			if try > 5 {
				t.Fatal("the cluster never stood still")
			}
			continue
		}
		want := map[string]float64{
			"gohsm_cluster_leader":              b2f(after.State == "Leader"),
			"gohsm_cluster_commit_index":        float64(after.CommitIndex),
			"gohsm_cluster_store_applied_index": float64(after.StoreApplied),
			"gohsm_cluster_term":                float64(after.Term),
			"gohsm_cluster_members":             2,
			"gohsm_cluster_tokens":              float64(after.Tokens),
			"gohsm_cluster_broken":              0,
			"gohsm_cluster_initialised":         1,
			"gohsm_cluster_has_leader":          1,
		}
		for name, v := range want {
			got := gaugeValue(t, fams, name, after.ID)
			if got != v {
				t.Fatalf("%s = %v, cluster status says %v", name, got, v)
			}
		}
		var peers []string
		for _, m := range fams["gohsm_cluster_member"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "peer" {
					peers = append(peers, l.GetValue())
				}
			}
		}
		var ids []string
		for _, m := range after.Members {
			ids = append(ids, m.ID)
		}
		slices.Sort(peers)
		slices.Sort(ids)
		if !slices.Equal(peers, ids) {
			t.Fatalf("gohsm_cluster_member peers %v, cluster status %v", peers, ids)
		}
		if fams["go_goroutines"] == nil {
			t.Fatal("no Go runtime metrics")
		}
		break
	}

	// A token made through A appears on a connection to B opened before.
	cb := pc.clientTo(1)
	before := tokenLabels(t, cb)
	if !slices.Equal(before, []string{devLabel, "(free)"}) {
		t.Fatalf("b before: %v", before)
	}
	devSlot := labelSlot(t, cb, devLabel)
	sb, err := cb.OpenSession(devSlot, ck.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	ca := pc.clientTo(0)
	free := labelSlot(t, ca, "(free)")
	must(t, ca.InitToken(free, []byte("so-pin-new"), "made-on-a"))
	sa, err := ca.OpenSession(free, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	must(t, ca.Login(sa, ck.CKU_SO, []byte("so-pin-new")))
	must(t, ca.InitPIN(sa, []byte("user-pin-new")))
	must(t, ca.Logout(sa))
	must(t, ca.Login(sa, ck.CKU_USER, []byte("user-pin-new")))

	if got := tokenLabels(t, cb); !slices.Equal(got, []string{devLabel, "made-on-a", "(free)"}) {
		t.Fatalf("b after a made a token: %v", got)
	}
	slot := labelSlot(t, cb, "made-on-a")
	s1, err := cb.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	must(t, cb.Login(s1, ck.CKU_USER, []byte("user-pin-new")))
	h, err := cb.GenerateKey(s1, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_LABEL, Value: []byte("made-on-b")}})
	must(t, err)
	mech := ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	must(t, cb.EncryptInit(s1, mech, h))
	ct, _, err := cb.Encrypt(s1, []byte("through b"), 100)
	must(t, err)
	must(t, ca.FindObjectsInit(sa, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("made-on-b")}}))
	hs, err := ca.FindObjects(sa, 10)
	must(t, err)
	must(t, ca.FindObjectsFinal(sa))
	if len(hs) != 1 {
		t.Fatalf("a finds %d keys made through b", len(hs))
	}
	must(t, ca.DecryptInit(sa, mech, hs[0]))
	pt, _, err := ca.Decrypt(sa, ct, 100)
	must(t, err)
	if string(pt) != "through b" {
		t.Fatal("round trip failed")
	}
	if _, err := cb.GetSessionInfo(sb); err != nil {
		t.Fatalf("b's session opened before: %v", err)
	}

	// The appliance's own series on A's endpoint: ca is connected to A.
	fams := scrapeMetrics(t, "http://"+metricsAddr+"/metrics")
	one := func(name string) *dto.Metric {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("metrics: no single %s", name)
		}
		return f.GetMetric()[0]
	}
	if n := one("gohsm_appliance_connections").GetGauge().GetValue(); n < 1 {
		t.Fatalf("gohsm_appliance_connections = %v with a client connected", n)
	}
	if n := one("gohsm_appliance_calls_in_flight").GetGauge().GetValue(); n < 0 {
		t.Fatalf("gohsm_appliance_calls_in_flight = %v", n)
	}
	if n := one("gohsm_appliance_busy_total").GetCounter().GetValue(); n != 0 {
		t.Fatalf("gohsm_appliance_busy_total = %v on an idle appliance", n)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return fams
}

func gaugeValue(t *testing.T, fams map[string]*dto.MetricFamily, name, member string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no %s", name)
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "member" && l.GetValue() == member {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{member=%q}", name, member)
	return 0
}

// clientTo connects the remote module's Go client to member i alone.
func (pc *procCluster) clientTo(i int) *client.Client {
	t := pc.t
	cc := client.DefaultConfig()
	cc.Address = pc.members[i].listen
	tcfg, err := client.LoadTLS(filepath.Join(pc.pki, "ca.pem"), filepath.Join(pc.pki, "client.pem"), filepath.Join(pc.pki, "client.key"), "", cc.Address)
	must(t, err)
	cc.TLS = tcfg
	c, err := client.New(cc)
	must(t, err)
	must(t, c.Initialize())
	t.Cleanup(func() { c.Finalize() })
	return c
}

func tokenLabels(t *testing.T, c *client.Client) []string {
	t.Helper()
	slots, err := c.GetSlotList(true)
	must(t, err)
	var out []string
	for _, s := range slots {
		info, err := c.GetTokenInfo(s)
		must(t, err)
		if info.Flags&ck.CKF_TOKEN_INITIALIZED == 0 {
			out = append(out, "(free)")
			continue
		}
		out = append(out, strings.TrimRight(info.Label, " "))
	}
	return out
}

func labelSlot(t *testing.T, c *client.Client, label string) ck.SlotID {
	t.Helper()
	slots, err := c.GetSlotList(true)
	must(t, err)
	for _, s := range slots {
		info, err := c.GetTokenInfo(s)
		must(t, err)
		l := strings.TrimRight(info.Label, " ")
		if info.Flags&ck.CKF_TOKEN_INITIALIZED == 0 {
			l = "(free)"
		}
		if l == label {
			return s
		}
	}
	t.Fatalf("no token %q", label)
	return 0
}

// A member waiting for gohsm cluster init stops cleanly on SIGTERM (exit
// status 0), having served nothing.
func TestClusterInitWaitStops(t *testing.T) {
	dir := t.TempDir()
	args := []string{"serve", "--dev", "--dir", dir, "--listen", freePort(t), "--raft", freePort(t), "--raft-init", "wait"}
	if devFlagExists("http") {
		args = append(args, "--http", "off")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainHelper$")
	cmd.Env = append(os.Environ(), "GOHSM_TEST_MAIN=1", "GOHSM_TEST_ARGS="+strings.Join(args, "\x1f"))
	var log syncBuffer
	cmd.Stderr = &log
	must(t, cmd.Start())
	addrFile := filepath.Join(dir, raftSubdir, "addr")
	for i := 0; ; i++ {
		if _, err := os.Stat(addrFile); err == nil && strings.Contains(log.String(), "waiting for gohsm cluster init") {
			break
		}
		if i > 600 {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("not waiting for init after 60 s:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := stopServeProcess(cmd); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if strings.Contains(log.String(), " listening on ") {
		t.Fatalf("a member waiting for init served:\n%s", log.String())
	}
}
