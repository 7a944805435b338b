package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/firmware-sim/cluster"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Three `gohsm serve --dev --raft` processes on loopback (this test binary
// running gohsm's main, as TestMainHelper), clients of the remote module's
// Go client pointed at all three.

type procMember struct {
	i                  int
	dir, listen, raftA string
	cmd                *exec.Cmd
	log                *syncBuffer
	extra              []string // more serve flags
}

// freePort is a loopback address no other caller of freePort in this
// process got: the kernel may hand the port of a listener just closed out
// again at once, and a member whose appliance and raft ports were the same
// could not start.
func freePort(t testing.TB) string {
	t.Helper()
	freePorts.Lock()
	defer freePorts.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !freePorts.given[addr] {
			freePorts.given[addr] = true
			return addr
		}
	}
}

var freePorts = struct {
	sync.Mutex
	given map[string]bool
}{given: map[string]bool{}}

type procCluster struct {
	t       testing.TB
	pki     string
	members []*procMember
}

func startProcCluster(t testing.TB, n int) *procCluster {
	t.Helper()
	base := t.TempDir()
	pc := &procCluster{t: t, pki: filepath.Join(base, "pki")}
	for i := range n {
		pc.members = append(pc.members, &procMember{i: i, dir: filepath.Join(base, fmt.Sprintf("m%d", i)),
			listen: freePort(t), raftA: freePort(t)})
	}
	pc.start(0, "")
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); pc.start(i, pc.members[0].raftA) }()
	}
	wg.Wait()
	t.Cleanup(pc.stopAll)
	return pc
}

func (pc *procCluster) start(i int, join string) {
	m := pc.members[i]
	args := []string{"serve", "--dev", "--dir", m.dir, "--listen", m.listen}
	if m.raftA != "" {
		args = append(args, "--raft", m.raftA, "--pki", pc.pki)
	}
	if devFlagExists("http") { // the dev gateway face: one fixed port, off here
		args = append(args, "--http", "off")
	}
	if join != "" {
		args = append(args, "--join", join)
	}
	args = append(args, m.extra...)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainHelper$")
	cmd.Env = append(os.Environ(), "GOHSM_TEST_MAIN=1", "GOHSM_TEST_ARGS="+strings.Join(args, "\x1f"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		pc.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	m.cmd, m.log = cmd, &syncBuffer{}
	up := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			m.log.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), " listening on ") {
				up <- struct{}{}
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(60 * time.Second):
		pc.t.Fatalf("member %d not listening after 60 s:\n%s", i, m.log.String())
	}
}

func (pc *procCluster) stopAll() {
	for _, m := range pc.members {
		if m.cmd != nil && m.cmd.ProcessState == nil {
			m.cmd.Process.Signal(syscall.SIGCONT)
			stopServeProcess(m.cmd)
		}
	}
}

func (pc *procCluster) kill(i int) {
	m := pc.members[i]
	m.cmd.Process.Signal(syscall.SIGKILL)
	m.cmd.Wait()
}

// status asks member i (with its own member certificate).
func (pc *procCluster) status(i int) (cluster.Status, error) {
	conf, err := memberTLSFrom(filepath.Join(pc.members[i].dir, raftSubdir))
	if err != nil {
		return cluster.Status{}, err
	}
	c, err := cluster.Dial(pc.members[i].raftA, conf, 2*time.Second)
	if err != nil {
		return cluster.Status{}, err
	}
	defer c.Close()
	return c.Status()
}

// leader returns the index of the member that leads, as the live members
// see it.
func (pc *procCluster) leader(skip map[int]bool) int {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range pc.members {
			if skip[i] {
				continue
			}
			st, err := pc.status(i)
			if err != nil || st.Leader == "" {
				continue
			}
			for j, o := range pc.members {
				if o.raftA == st.Leader && !skip[j] {
					return j
				}
			}
			_ = m
		}
		time.Sleep(50 * time.Millisecond)
	}
	pc.t.Fatal("no leader")
	return -1
}

func (pc *procCluster) addresses() string {
	var a []string
	for _, m := range pc.members {
		a = append(a, m.listen)
	}
	return strings.Join(a, ",")
}

// client connects the remote module's Go client to every member and opens
// a logged-in session on the dev token.
func (pc *procCluster) client(timeout time.Duration) (*client.Client, ck.SessionHandle) {
	t := pc.t
	cc := client.DefaultConfig()
	cc.Address = pc.addresses()
	cc.Timeout = timeout
	tcfg, err := client.LoadTLS(filepath.Join(pc.pki, "ca.pem"), filepath.Join(pc.pki, "client.pem"), filepath.Join(pc.pki, "client.key"), "", cc.Address)
	if err != nil {
		t.Fatal(err)
	}
	cc.TLS = tcfg
	c, err := client.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Finalize() })
	slots, err := c.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		info, err := c.GetTokenInfo(s)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimRight(info.Label, " ") == devLabel {
			h, err := c.OpenSession(s, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Login(h, ck.CKU_USER, []byte(devUserPIN)); err != nil && !errors.Is(err, ck.CKR_USER_ALREADY_LOGGED_IN) {
				t.Fatal(err)
			}
			return c, h
		}
	}
	t.Fatal("no dev token")
	return nil, 0
}

// Keys made through one member are usable through the others at once:
// the remote module's client on a member of its own, one per member.
func TestClusterProcessesReadYourWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three appliances")
	}
	pc := startProcCluster(t, 3)
	type one struct {
		c *client.Client
		s ck.SessionHandle
	}
	var cs []one
	for i := range pc.members {
		saved := pc.members
		pc.members = []*procMember{saved[i]} // this client: member i only
		c, s := pc.client(5 * time.Second)
		pc.members = saved
		cs = append(cs, one{c, s})
	}
	for i := range 9 {
		a, b := cs[i%3], cs[(i+1)%3]
		id := []byte(fmt.Sprintf("ryw-%d", i))
		pub, priv, err := a.c.GenerateKeyPair(a.s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
			[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_EC_PARAMS, Value: p256Params}, {Type: ck.CKA_ID, Value: id}},
			[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_SIGN, Value: attr.Bool(true)}, {Type: ck.CKA_ID, Value: id}})
		if err != nil {
			t.Fatal(err)
		}
		// The handle made through a is valid through b, at once.
		if err := b.c.SignInit(b.s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv); err != nil {
			t.Fatalf("member %d: sign with a key just made on member %d: %v", (i+1)%3, i%3, err)
		}
		sig, _, err := b.c.Sign(b.s, []byte("msg"), 128)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.c.VerifyInit(a.s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, pub); err != nil {
			t.Fatal(err)
		}
		if err := a.c.Verify(a.s, []byte("msg"), sig); err != nil {
			t.Fatalf("signature made on member %d does not verify on %d: %v", (i+1)%3, i%3, err)
		}
	}

	// gohsm cluster status and metrics see three members and one leader.
	var out strings.Builder
	if err := clusterMain([]string{"status", "--dir", pc.members[1].dir}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "Leader") != 1 || strings.Count(out.String(), "Follower") != 2 || !strings.Contains(out.String(), "3 member(s)") {
		t.Fatalf("status:\n%s", out.String())
	}
	out.Reset()
	if err := clusterMain([]string{"metrics", "--dir", pc.members[2].dir}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "gohsm_cluster_up{") != 3 || strings.Count(out.String(), "} 1\n") < 4 {
		t.Fatalf("metrics:\n%s", out.String())
	}
	// gohsm cluster backup writes an encrypted file; restore refuses a
	// cluster that has tokens.
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("a passphrase\n"), 0o600)
	bk := filepath.Join(t.TempDir(), "cluster.bak")
	if err := clusterMain([]string{"backup", "--dir", pc.members[0].dir, "--out", bk, "--passphrase-file", pass}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(bk); err != nil || len(b) < 1000 || strings.Contains(string(b), "ryw-0") || strings.Contains(string(b), devLabel) {
		t.Fatalf("backup file: %d bytes, %v (or a label in the clear)", len(b), err)
	}
	if err := clusterMain([]string{"restore", "--dir", pc.members[1].dir, "--in", bk, "--passphrase-file", pass}, io.Discard); err == nil || !strings.Contains(err.Error(), "already has tokens") {
		t.Fatalf("restore into a cluster with tokens: %v", err)
	}

	// A dead member is removed with gohsm cluster leave.
	pc.kill(2)
	st, err := pc.status(0)
	if err != nil {
		t.Fatal(err)
	}
	var dead string
	for _, m := range st.Members {
		if m.Addr == pc.members[2].raftA {
			dead = m.ID
		}
	}
	if err := clusterMain([]string{"leave", "--dir", pc.members[0].dir, "--id", dead}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if st, err = pc.status(1); err != nil || len(st.Members) != 2 {
		t.Fatalf("after leave: %+v, %v", st.Members, err)
	}
}

var p256Params = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// Linearizability under faults, checked with porcupine. Each schedule:
// four clients (all three members in their address list) create, relabel,
// destroy and read objects while the leader is SIGKILLed, then another
// member (the new leader in half the schedules) is SIGSTOPped, the killed
// one restarted, and the stopped one SIGCONTed. Keys are CKA_ID
// values, the register is CKA_LABEL. make test runs one schedule;
// GOHSM_CLUSTER_SCHEDULES=20 (make cluster-torture) more.
func TestClusterLinearizable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three appliances per schedule")
	}
	n := 1
	if v := os.Getenv("GOHSM_CLUSTER_SCHEDULES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	var failovers []time.Duration
	for s := range n {
		seed := uint64(time.Now().UnixNano())
		t.Run(fmt.Sprintf("schedule%d", s), func(t *testing.T) {
			failovers = append(failovers, linearizableSchedule(t, seed))
		})
	}
	if len(failovers) > 1 {
		sort.Slice(failovers, func(i, j int) bool { return failovers[i] < failovers[j] })
		t.Logf("failover (SIGKILL of the leader to the first write committed after it), %d runs: min %v median %v p90 %v max %v",
			len(failovers), failovers[0], failovers[len(failovers)/2], failovers[len(failovers)*9/10], failovers[len(failovers)-1])
	}
}

type linInput struct {
	Op  string // create, set, destroy, read
	Key string
	V   string
}

type linOutput struct {
	Unknown bool // failed: may or may not have taken effect
	Absent  bool
	V       string
	N       int // read: objects found
}

type linState struct {
	Exists bool
	V      string
}

var linModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, o := range h {
			k := o.Input.(linInput).Key
			if by[k] == nil {
				keys = append(keys, k)
			}
			by[k] = append(by[k], o)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() []any { return []any{linState{}} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(linState), input.(linInput), output.(linOutput)
		switch in.Op {
		case "create":
			next := linState{true, in.V}
			if out.Unknown {
				return []any{st, next}
			}
			if st.Exists {
				return nil
			}
			return []any{next}
		case "set":
			if out.Unknown {
				if st.Exists {
					return []any{st, linState{true, in.V}}
				}
				return []any{st}
			}
			if out.Absent {
				if st.Exists {
					return nil
				}
				return []any{st}
			}
			if !st.Exists {
				return nil
			}
			return []any{linState{true, in.V}}
		case "destroy":
			if out.Unknown {
				return []any{st, linState{}}
			}
			if !st.Exists {
				return nil
			}
			return []any{linState{}}
		case "read":
			if out.N > 1 {
				return nil
			}
			if out.Absent != !st.Exists || (st.Exists && out.V != st.V) {
				return nil
			}
			return []any{st}
		}
		return nil
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(linInput), out.(linOutput)
		switch {
		case o.Unknown:
			return fmt.Sprintf("%s(%s,%s) -> ?", i.Op, i.Key, i.V)
		case o.Absent:
			return fmt.Sprintf("%s(%s,%s) -> absent", i.Op, i.Key, i.V)
		}
		return fmt.Sprintf("%s(%s,%s) -> %s", i.Op, i.Key, i.V, o.V)
	},
}

// linearizableSchedule runs one schedule and returns the failover time.
func linearizableSchedule(t *testing.T, seed uint64) time.Duration {
	rng := rand.New(rand.NewPCG(seed, 1))
	pc := startProcCluster(t, 3)
	const clients = 4
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu         sync.Mutex
		history    []porcupine.Operation
		keys       []string
		lastOK     = map[int]int64{} // per client: last successful write
		okTimes    []int64
		okCalls    []int64
		readValues int
	)
	errs := map[string]int{}
	noteErr := func(err error) {
		if err != nil {
			msg := err.Error()
			if i := strings.LastIndex(msg, ": "); i >= 0 {
				msg = msg[i+2:]
			}
			mu.Lock()
			errs[msg]++
			mu.Unlock()
		}
	}
	record := func(cl int, in linInput, call int64, out linOutput) {
		ret := now()
		if out.Unknown {
			ret = 1 << 62 // may take effect at any time after the call
		}
		mu.Lock()
		history = append(history, porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
		if !out.Unknown && in.Op != "read" {
			lastOK[cl] = ret
			okTimes = append(okTimes, ret)
			okCalls = append(okCalls, call)
		}
		if in.Op == "read" && !out.Absent {
			readValues++
		}
		mu.Unlock()
	}
	find := func(c *client.Client, s ck.SessionHandle, key string) ([]ck.ObjectHandle, error) {
		if err := c.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_ID, Value: []byte(key)}}); err != nil {
			return nil, err
		}
		hs, err := c.FindObjects(s, 10)
		if ferr := c.FindObjectsFinal(s); err == nil {
			err = ferr
		}
		return hs, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for cl := range clients {
		c, s := pc.client(2 * time.Second)
		crng := rand.New(rand.NewPCG(seed, uint64(cl)+2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			own, ownN := "", 0
			for v := 0; ; v++ {
				select {
				case <-stop:
					return
				default:
				}
				val := fmt.Sprintf("c%d-v%d", cl, v)
				mu.Lock()
				var other string
				if len(keys) > 0 { // mostly the newest keys: most of them exist
					recent := keys[max(0, len(keys)-2*clients):]
					other = recent[crng.IntN(len(recent))]
				}
				mu.Unlock()
				switch r := crng.IntN(10); {
				case own == "" || r == 0 && own != "":
					if own != "" { // destroy the old one, then make a new key
						call := now()
						hs, err := find(c, s, own)
						if err == nil && len(hs) == 1 {
							err = c.DestroyObject(s, hs[0])
						}
						noteErr(err)
						record(cl, linInput{Op: "destroy", Key: own}, call, linOutput{Unknown: err != nil || len(hs) != 1})
					}
					ownN++
					own = fmt.Sprintf("k%d-%d", cl, ownN)
					call := now()
					_, err := c.CreateObject(s, []ck.Attribute{
						{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
						{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))},
						{Type: ck.CKA_VALUE, Value: []byte("0123456789abcdef")},
						{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
						{Type: ck.CKA_ID, Value: []byte(own)},
						{Type: ck.CKA_LABEL, Value: []byte(val)}})
					noteErr(err)
					record(cl, linInput{Op: "create", Key: own, V: val}, call, linOutput{Unknown: err != nil})
					mu.Lock()
					keys = append(keys, own)
					mu.Unlock()
				case r < 5 && other != "":
					call := now()
					hs, err := find(c, s, other)
					out := linOutput{}
					switch {
					case err != nil || len(hs) > 1:
						out.Unknown = true
					case len(hs) == 0:
						out.Absent = true
					default:
						err = c.SetAttributeValue(s, hs[0], []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(val)}})
						if errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID) {
							out.Absent = true
						} else if err != nil {
							out.Unknown = true
						}
					}
					noteErr(err)
					record(cl, linInput{Op: "set", Key: other, V: val}, call, out)
				case other != "":
					call := now()
					hs, err := find(c, s, other)
					out := linOutput{N: len(hs)}
					if err == nil && len(hs) == 0 {
						out.Absent = true
					}
					if err == nil && len(hs) >= 1 {
						var res []ck.AttributeResult
						res, err = c.GetAttributeValue(s, hs[0], []ck.AttributeRequest{{Type: ck.CKA_LABEL, Cap: 64}})
						if errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID) {
							err, out.Absent = nil, true // destroyed between find and get
						} else if err == nil {
							out.V = string(res[0].Value)
						}
					}
					if err == nil { // a failed read changed nothing
						record(cl, linInput{Op: "read", Key: other}, call, out)
					}
				}
			}
		}()
	}
	// The faults.
	time.Sleep(1500 * time.Millisecond)
	l := pc.leader(nil)
	others := []int{}
	for i := range pc.members {
		if i != l {
			others = append(others, i)
		}
	}
	killedAt := now()
	pc.kill(l)
	t.Logf("seed %d: SIGKILL leader m%d at %v", seed, l, time.Duration(killedAt))
	time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
	// Half the schedules stop the new leader (it resumes deposed, with a
	// stale copy: its reads must not be served from it), half a follower.
	stopped := others[rng.IntN(2)]
	what := "a follower"
	if rng.IntN(2) == 0 {
		stopped, what = pc.leader(map[int]bool{l: true}), "the new leader"
	}
	pc.members[stopped].cmd.Process.Signal(syscall.SIGSTOP)
	t.Logf("SIGSTOP %s m%d at %v", what, stopped, time.Duration(now()))
	// The killed member comes back on its data meanwhile and, with the
	// member still running, makes a majority again.
	pc.start(l, "")
	time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
	pc.members[stopped].cmd.Process.Signal(syscall.SIGCONT)
	t.Logf("SIGCONT m%d at %v", stopped, time.Duration(now()))
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	var failover time.Duration
	// Failover: from the kill to the first successful write that was
	// called after it.
	for i, ts := range okTimes {
		if okCalls[i] > killedAt && (failover == 0 || time.Duration(ts-killedAt) < failover) {
			failover = time.Duration(ts - killedAt)
		}
	}
	writes, unknown := 0, 0
	for _, o := range history {
		if o.Input.(linInput).Op != "read" {
			writes++
			if o.Output.(linOutput).Unknown {
				unknown++
			}
		}
	}
	t.Logf("%d operations (%d writes, %d with unknown outcome); %d reads saw a value; first write after the kill %v later; errors: %v", len(history), writes, unknown, readValues, failover, errs)
	if writes-unknown < 20 || readValues < 20 {
		t.Fatalf("only %d writes and %d reads of a value succeeded: the schedule tested nothing", writes-unknown, readValues)
	}
	res, info := porcupine.CheckOperationsVerbose(linModel.ToModel(), history, 60*time.Second)
	if res != porcupine.Ok {
		f := filepath.Join(os.TempDir(), fmt.Sprintf("gohsm-cluster-lin-%d.html", seed))
		if out, err := os.Create(f); err == nil {
			porcupine.Visualize(linModel.ToModel(), info, out)
			out.Close()
		}
		t.Fatalf("history is %s (seed %d; visualisation %s)", res, seed, f)
	}
	return failover
}

var _ hsm.Backend = (*client.Client)(nil)

// devFlagExists reports whether serve --dev has the flag (faces add some).
func devFlagExists(name string) bool {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var d devFlags
	d.register(fs)
	return fs.Lookup(name) != nil
}
