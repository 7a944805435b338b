package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// signers opens n sessions over clients (each client all members, a
// random one first) and returns them with an EC key's handle.
type signer struct {
	c *client.Client
	s ck.SessionHandle
}

func openSigners(t testing.TB, pc *procCluster, clients, perClient int, timeout time.Duration) ([]signer, ck.ObjectHandle) {
	var out []signer
	for range clients {
		c, s := pc.client(timeout)
		out = append(out, signer{c, s})
		info, err := c.GetSessionInfo(s)
		if err != nil {
			t.Fatal(err)
		}
		for range perClient - 1 {
			h, err := c.OpenSession(info.SlotID, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, signer{c, h})
		}
	}
	_, priv, err := out[0].c.GenerateKeyPair(out[0].s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_EC_PARAMS, Value: p256Params}},
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_SIGN, Value: attr.Bool(true)}, {Type: ck.CKA_LABEL, Value: []byte("signer")}})
	if err != nil {
		t.Fatal(err)
	}
	return out, priv
}

func signOnce(sg signer, key ck.ObjectHandle) error {
	if err := sg.c.SignInit(sg.s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, key); err != nil {
		return err
	}
	_, _, err := sg.c.Sign(sg.s, []byte("message to sign"), 128)
	return err
}

// Signing from 32 sessions goes on through a SIGKILL of the leader: no call
// takes longer than the bound (the client's timeout, 2 s, plus slack for
// the reconnection to another member), and the error rate is reported.
func TestClusterFailoverSigning(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three appliances")
	}
	const bound = 2 * time.Second
	pc := startProcCluster(t, 3)
	sgs, key := openSigners(t, pc, 4, 8, bound)
	var (
		mu      sync.Mutex
		lats    []time.Duration
		errs    = map[string]int{}
		ok, bad atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, sg := range sgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				err := signOnce(sg, key)
				d := time.Since(t0)
				mu.Lock()
				lats = append(lats, d)
				if err != nil {
					errs[err.Error()]++
				}
				mu.Unlock()
				if err != nil {
					bad.Add(1)
					time.Sleep(20 * time.Millisecond)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	l := pc.leader(nil)
	pc.kill(l)
	killed := time.Now()
	before := ok.Load()
	time.Sleep(4 * time.Second)
	after := ok.Load() - before
	close(stop)
	wg.Wait()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	total := ok.Load() + bad.Load()
	max := lats[len(lats)-1]
	t.Logf("32 sessions, leader m%d killed: %d signatures, %d errors (%.2f%%), %d signatures in the 4 s after the kill; latency p50 %v p99 %v max %v (bound %v); errors %v",
		l, ok.Load(), bad.Load(), 100*float64(bad.Load())/float64(total), after, lats[len(lats)/2], lats[len(lats)*99/100], max, bound, errs)
	_ = killed
	if after == 0 {
		t.Fatal("no signature after the leader's death")
	}
	if max > bound+time.Second {
		t.Fatalf("a call blocked %v, beyond the bound %v", max, bound)
	}
}

// Object-create and sign rates through the remote client with 1 and 3
// members (GOHSM_CLUSTER_BENCH=1; numbers in docs/cluster.md).
func TestClusterBench(t *testing.T) {
	if os.Getenv("GOHSM_CLUSTER_BENCH") == "" {
		t.Skip("GOHSM_CLUSTER_BENCH=1 runs it")
	}
	for _, members := range []int{0, 1, 3} {
		var pc *procCluster
		if members == 0 {
			pc = startPlain(t)
		} else {
			pc = startProcCluster(t, members)
		}
		sgs, key := openSigners(t, pc, 4, 4, 5*time.Second)
		for _, what := range []string{"create", "sign"} {
			var n atomic.Int64
			var mu sync.Mutex
			errs := map[string]int{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i, sg := range sgs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; ; k++ {
						select {
						case <-stop:
							return
						default:
						}
						var err error
						if what == "sign" {
							err = signOnce(sg, key)
						} else {
							_, err = sg.c.CreateObject(sg.s, []ck.Attribute{
								{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
								{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
								{Type: ck.CKA_VALUE, Value: make([]byte, 32)},
								{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
								{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("b%d-%d", i, k))}})
						}
						if err != nil {
							mu.Lock()
							errs[err.Error()]++
							mu.Unlock()
							time.Sleep(10 * time.Millisecond)
							continue
						}
						n.Add(1)
					}
				}()
			}
			const d = 5 * time.Second
			time.Sleep(d)
			close(stop)
			wg.Wait()
			name := fmt.Sprintf("%d member(s)", members)
			if members == 0 {
				name = "no cluster (plain serve --dev)"
			}
			t.Logf("%s, 16 sessions: %s %.0f/s; errors %v", name, what, float64(n.Load())/d.Seconds(), errs)
		}
		pc.stopAll()
	}
	_ = syscall.SIGKILL
}

// startPlain starts one `gohsm serve --dev` without a cluster, as a
// procCluster of one, for the baseline.
func startPlain(t testing.TB) *procCluster {
	base := t.TempDir()
	pc := &procCluster{t: t, pki: filepath.Join(base, "m0", "pki")}
	pc.members = []*procMember{{dir: filepath.Join(base, "m0"), listen: freePort(t)}}
	pc.start(0, "")
	t.Cleanup(pc.stopAll)
	return pc
}

// Failover time over GOHSM_CLUSTER_FAILOVERS runs (default 20) on one
// cluster: a writer creates objects through the remote client (all three
// members in its list) while the leader is SIGKILLed; the time is from the
// kill to the first create, called after the kill, that returns success.
// The killed member is restarted before the next run. Gated like
// TestClusterBench (GOHSM_CLUSTER_BENCH=1).
func TestClusterFailoverTimes(t *testing.T) {
	if os.Getenv("GOHSM_CLUSTER_BENCH") == "" {
		t.Skip("GOHSM_CLUSTER_BENCH=1 runs it")
	}
	runs := 20
	if v := os.Getenv("GOHSM_CLUSTER_FAILOVERS"); v != "" {
		fmt.Sscan(v, &runs)
	}
	pc := startProcCluster(t, 3)
	sgs, _ := openSigners(t, pc, 2, 1, 3*time.Second)
	var times []time.Duration
	for r := range runs {
		var okAfter atomic.Int64 // ns since epoch of the first success called after the kill
		var killedAt atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i, sg := range sgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					call := time.Now().UnixNano()
					_, err := sg.c.CreateObject(sg.s, []ck.Attribute{
						{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_DATA))},
						{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
						{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("f%d-%d-%d", r, i, k))}})
					if err != nil {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					if ka := killedAt.Load(); ka != 0 && call > ka {
						okAfter.CompareAndSwap(0, time.Now().UnixNano())
					}
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		l := pc.leader(nil)
		killedAt.Store(time.Now().UnixNano())
		pc.kill(l)
		deadline := time.Now().Add(20 * time.Second)
		for okAfter.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		if okAfter.Load() == 0 {
			t.Fatalf("run %d: no write 20 s after the kill", r)
		}
		d := time.Duration(okAfter.Load() - killedAt.Load())
		times = append(times, d)
		pc.start(l, "")
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	t.Logf("failover over %d runs (SIGKILL of the leader to the first write after it): min %v p50 %v p90 %v max %v; all: %v",
		len(times), times[0], times[len(times)/2], times[len(times)*9/10], times[len(times)-1], times)
}
