package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/cluster"
	"github.com/gohsm/gohsm/firmware-sim/device"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
	"github.com/gohsm/gohsm/tokens"
)

// High availability (docs/cluster.md): dev mode forms a cluster with
//
//	gohsm serve --dev --dir D --listen ADDR --raft RADDR [--join RADDR] [--pki SHARED_PKI_DIR]
//
// and `gohsm cluster status|join|leave --dir D` talk to a member over its
// raft port with that member's cluster certificate.
//
// Files: SHARED_PKI_DIR/cluster-ca.pem and cluster-ca.key, the cluster CA
// (dev: made by the first member; a separate CA from the appliance's, so
// that no client certificate is a member certificate); D/raft/ the
// member's raft data (raft.db, snapshots/, state/ its copy of the store),
// member.pem and member.key (its certificate, issued at first start),
// cluster-ca.pem (a copy), node-id and addr (its id and raft address).

// devCluster are serve's cluster flags (dev mode only).
type devCluster struct {
	raft, join, pki, id, init string
}

func (c *devCluster) register(fs *flag.FlagSet) {
	fs.StringVar(&c.raft, "raft", "", "dev mode: form or join a cluster; this member's raft address, loopback (docs/cluster.md)")
	fs.StringVar(&c.join, "join", "", "dev mode with --raft: the raft address of a member of the cluster to join (none: a new cluster)")
	fs.StringVar(&c.pki, "pki", "", "dev mode: a PKI directory shared by the members (default D/pki); the cluster CA is made in it")
	fs.StringVar(&c.id, "node-id", "", "dev mode with --raft: this member's id (default: kept in D/raft/node-id, else m-PORT)")
	fs.StringVar(&c.init, "raft-init", raftInitAuto, "dev mode with --raft, no --join, no raft data yet: auto (make the cluster at once) or wait (for gohsm cluster init)")
}

// raft_init / --raft-init: what a member without raft data and without a
// member to join does. auto makes a new cluster of itself at once (the
// first member of dev mode, and serve --config without raft_join, as
// before); wait starts raft empty and waits for gohsm cluster init, so
// that a member that lost its raft_join line, or was started first by
// mistake, never makes a second cluster by itself.
const (
	raftInitAuto = "auto"
	raftInitWait = "wait"
)

func checkRaftInit(key, v string) error {
	if v != raftInitAuto && v != raftInitWait {
		return fmt.Errorf("%s %q: want auto or wait", key, v)
	}
	return nil
}

func (c *devCluster) on() bool { return c.raft != "" }

const (
	clusterCACert = "cluster-ca.pem"
	clusterCAKey  = "cluster-ca.key"
	raftSubdir    = "raft"
)

// devMember is a running cluster member of dev mode.
type devMember struct {
	node *cluster.Node
}

// startDevMember starts the member of dir: the cluster CA in pkiDir (made
// if missing), the member certificate, raft; then, for the member that
// made the cluster, the dev token through the replicated store, or for a
// joining member, waits until it has the cluster's tokens.
func startDevMember(ctx context.Context, c *devCluster, dir, pkiDir string, logger *log.Logger) (*devMember, knownToken, bool, error) {
	if err := checkLoopback(c.raft); err != nil {
		return nil, knownToken{}, false, fmt.Errorf("--raft: %w", err)
	}
	if err := checkRaftInit("--raft-init", c.init); err != nil {
		return nil, knownToken{}, false, err
	}
	rdir := filepath.Join(dir, raftSubdir)
	if err := ensurePrivateDir(rdir); err != nil {
		return nil, knownToken{}, false, err
	}
	tlsConf, err := devMemberTLS(pkiDir, rdir)
	if err != nil {
		return nil, knownToken{}, false, err
	}
	m, err := startMember(ctx, memberStart{tls: tlsConf, rdir: rdir, storeDir: dir, raft: c.raft, join: c.join, id: c.id,
		wait: c.init == raftInitWait, dev: true}, logger)
	if err != nil {
		return nil, knownToken{}, false, err
	}
	node := m.node
	st, err := node.Storage()
	if err != nil {
		node.Close()
		return nil, knownToken{}, false, err
	}
	defer st.Close()
	tok, made, err := ensureKnownTokenIn(st, &conf.Config{Profile: ck.DefaultProfile}, devToken, demoToken)
	if err != nil {
		node.Close()
		return nil, knownToken{}, false, fmt.Errorf("dev token: %w", err)
	}
	return m, tok, made, nil
}

// storage is serveConfig.storage for the member's engines.
func (m *devMember) storage() (hsm.Storage, io.Closer, error) {
	st, err := m.node.Storage()
	if err != nil {
		return nil, nil, err
	}
	return st, st, nil
}

func (m *devMember) close() error { return m.node.Close() }

// devMemberTLS makes (dev) the cluster CA in pkiDir and this member's
// certificate in rdir, and returns the member's TLS configuration.
func devMemberTLS(pkiDir, rdir string) (*tls.Config, error) {
	if err := ensurePrivateDir(pkiDir); err != nil {
		return nil, err
	}
	caCert, caKey := filepath.Join(pkiDir, clusterCACert), filepath.Join(pkiDir, clusterCAKey)
	if _, err := os.Stat(caCert); errors.Is(err, os.ErrNotExist) {
		if err := makeClusterCA(caCert, caKey); err != nil {
			return nil, fmt.Errorf("cluster CA: %w", err)
		}
	}
	caPEM, err := os.ReadFile(caCert)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(rdir, clusterCACert), caPEM, 0o644); err != nil {
		return nil, err
	}
	mCert, mKey := filepath.Join(rdir, "member.pem"), filepath.Join(rdir, "member.key")
	if _, err := os.Stat(mCert); errors.Is(err, os.ErrNotExist) {
		ca, signer, err := loadCAPaths(caCert, caKey)
		if err != nil {
			return nil, err
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		der, err := issue(&x509.Certificate{
			Subject:     pkix.Name{CommonName: "gohsm cluster member", Organization: []string{"gohsm development (not for production)"}},
			NotBefore:   now.Add(-pkiBackdate),
			NotAfter:    now.Add(pkiLeafValidity),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}, ca, &key.PublicKey, signer)
		if err != nil {
			return nil, err
		}
		if err := writeKeyPair(mCert, mKey, der, key); err != nil {
			return nil, err
		}
	}
	return memberTLSFrom(rdir)
}

// memberTLSFrom loads a member's TLS configuration from its raft dir.
func memberTLSFrom(rdir string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(rdir, "member.pem"), filepath.Join(rdir, "member.key"))
	if err != nil {
		return nil, fmt.Errorf("member certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(rdir, clusterCACert))
	if err != nil {
		return nil, err
	}
	return cluster.MemberTLS(caPEM, pair)
}

func makeClusterCA(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "gohsm development cluster CA", Organization: []string{"gohsm development (not for production)"}},
		NotBefore:             now.Add(-pkiBackdate),
		NotAfter:              now.Add(pkiCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := issue(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	return writeKeyPair(certPath, keyPath, der, crypto.Signer(key))
}

// gohsm cluster status|join|leave --dir D [--raft ADDR]

func clusterCmd(args []string) error { return clusterMain(args, os.Stdout) }

func clusterUsage(w io.Writer) {
	fmt.Fprint(w, `usage:
  gohsm cluster init   --dir D [--raft ADDR]          make a new cluster of the member (one started with
        raft_init = wait / --raft-init wait); refused on a member that is in a cluster
  gohsm cluster status --dir D [--raft ADDR]          leader, members, commit and applied index, lag
  gohsm cluster join   --dir D [--raft ADDR] --id ID --addr RADDR   add a member (a voter)
  gohsm cluster leave  --dir D [--raft ADDR] --id ID  remove a member (leaving, or dead)
  gohsm cluster metrics --dir D [--raft ADDR]         the status as Prometheus text
  gohsm cluster device-copy (--config FILE | --dir D --pki P) --from RADDR
        a new member (not running, no device yet) gets the cluster's device record
        from the member at RADDR; unseal it with the same shares (docs/cluster.md, "Devices")
  gohsm cluster backup  --dir D --out F (--passphrase-file P | --recipient PUB.pem)
        the whole replicated store (sealed as stored), encrypted like a token backup
  gohsm cluster restore --dir D --in F (--passphrase-file P | --identity KEY.pem)
        a backup into a new cluster (one without tokens: serve --config members)

D is a member's directory (its D/raft holds the member certificate used to
connect); --raft is the member to ask (default: D's own). A new cluster is
made by its first member: gohsm serve --raft RADDR without --join, at once
(raft_init = auto, the default) or when gohsm cluster init asks
(raft_init = wait); members join with --join RADDR (docs/cluster.md).
`)
}

func clusterMain(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		clusterUsage(out)
		return nil
	}
	sub := args[0]
	if sub == "device-copy" {
		return clusterDeviceCopy(args[1:], out)
	}
	fs := flag.NewFlagSet("cluster "+sub, flag.ContinueOnError)
	dir := fs.String("dir", "", "a member's directory")
	addr := fs.String("raft", "", "the member to ask (default: the one of --dir)")
	id := fs.String("id", "", "join, leave: the member's id")
	raddr := fs.String("addr", "", "join: the new member's raft address")
	outFile := fs.String("out", "", "backup: the file to write")
	in := fs.String("in", "", "restore: the backup file to read")
	passFile := fs.String("passphrase-file", "", "backup, restore: file holding the passphrase (Argon2id)")
	recipient := fs.String("recipient", "", "backup: PEM public key (X25519 or EC) to encrypt to")
	identity := fs.String("identity", "", "restore: PEM private key the backup was encrypted to")
	if _, err := parseInterspersed(fs, args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("want --dir D (a member's directory)")
	}
	rdir := filepath.Join(*dir, raftSubdir)
	conf, err := memberTLSFrom(rdir)
	if err != nil {
		return err
	}
	if *addr == "" {
		b, err := os.ReadFile(filepath.Join(rdir, "addr"))
		if err != nil {
			return fmt.Errorf("--raft not given and %w", err)
		}
		*addr = strings.TrimSpace(string(b))
	}
	c, err := cluster.Dial(*addr, conf, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	switch sub {
	case "status", "metrics":
		return clusterStatus(c, conf, out, sub == "metrics")
	case "init":
		st, err := c.Init()
		if err != nil {
			return fmt.Errorf("cluster init: %w", err)
		}
		fmt.Fprintf(out, "cluster initialised: %s (%s) leads a new cluster of one member; start the others with raft_join = %s (dev: --join %s)\n",
			st.ID, st.Addr, st.Addr, st.Addr)
		return nil
	case "join":
		if *id == "" || *raddr == "" {
			return errors.New("join: want --id ID --addr RADDR")
		}
		// The new member, running and waiting, says which device it has:
		// the cluster refuses one whose device key differs.
		nc, err := cluster.Dial(*raddr, conf, 5*time.Second)
		if err != nil {
			return fmt.Errorf("join: the new member must be running (its device is checked): %w", err)
		}
		nst, err := nc.Status()
		nc.Close()
		if err != nil {
			return fmt.Errorf("join: %s: %w", *raddr, err)
		}
		if nst.ID != *id {
			return fmt.Errorf("join: the member at %s is %q, not %q", *raddr, nst.ID, *id)
		}
		return c.Join(*id, *raddr, nst.Device)
	case "leave":
		if *id == "" {
			return errors.New("leave: want --id ID")
		}
		return c.Remove(*id)
	case "backup":
		if *outFile == "" || (*passFile == "") == (*recipient == "") {
			return errors.New("backup: want --out FILE and exactly one of --passphrase-file, --recipient")
		}
		var key tokens.BackupKey
		if *passFile != "" {
			key.Passphrase, err = readPassphrase(*passFile)
			defer clear(key.Passphrase)
		} else {
			key.Recipient, err = readRecipient(*recipient)
		}
		if err != nil {
			return err
		}
		snap, err := c.Backup()
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := tokens.EncryptBackup(&buf, bytes.NewReader(snap), key); err != nil {
			return err
		}
		clear(snap)
		if err := writeFileAtomic(*outFile, buf.Bytes(), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "cluster backup written to %s (%d bytes, encrypted)\n", *outFile, buf.Len())
		return nil
	case "restore":
		if *in == "" || (*passFile == "") == (*identity == "") {
			return errors.New("restore: want --in FILE and exactly one of --passphrase-file, --identity")
		}
		var key tokens.BackupKey
		if *passFile != "" {
			key.Passphrase, err = readPassphrase(*passFile)
			defer clear(key.Passphrase)
		} else {
			key.Identity, err = readIdentity(*identity)
		}
		if err != nil {
			return err
		}
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		var plain bytes.Buffer
		if err := tokens.DecryptBackup(&plain, f, key); err != nil {
			return fmt.Errorf("restore %s: %w", *in, err)
		}
		defer clear(plain.Bytes())
		n, err := c.Restore(plain.Bytes())
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "restored %d token(s) into the cluster\n", n)
		return nil
	}
	return fmt.Errorf("unknown cluster command %q (gohsm cluster help)", sub)
}

// clusterStatus asks the member, then every member of its configuration,
// and prints one line per member; lag is the leader's commit index minus
// what the member's store applied.
func clusterStatus(c *cluster.Client, conf *tls.Config, out io.Writer, prom bool) error {
	st, err := c.Status()
	if err != nil {
		return err
	}
	if len(st.Members) == 0 && st.LastLogIndex == 0 && !prom {
		fmt.Fprintf(out, "member %s (%s) is in no cluster yet: it waits for gohsm cluster init\n", st.ID, st.Addr)
		return nil
	}
	views := map[string]*cluster.Status{st.ID: &st}
	errs := map[string]error{}
	for _, m := range st.Members {
		if views[m.ID] != nil {
			continue
		}
		mc, err := cluster.Dial(m.Addr, conf, 2*time.Second)
		if err == nil {
			var s cluster.Status
			s, err = mc.Status()
			mc.Close()
			if err == nil {
				views[m.ID] = &s
			}
		}
		if err != nil {
			errs[m.ID] = err
		}
	}
	var commit uint64
	if l := views[st.LeaderID]; l != nil {
		commit = l.CommitIndex
	}
	if prom {
		fmt.Fprintln(out, "# TYPE gohsm_cluster_up gauge\n# TYPE gohsm_cluster_leader gauge\n# TYPE gohsm_cluster_commit_index gauge\n# TYPE gohsm_cluster_applied_index gauge\n# TYPE gohsm_cluster_store_applied_index gauge\n# TYPE gohsm_cluster_lag gauge")
		for _, m := range st.Members {
			v := views[m.ID]
			up := 0
			if v != nil {
				up = 1
			}
			fmt.Fprintf(out, "gohsm_cluster_up{member=%q} %d\n", m.ID, up)
			if v == nil {
				continue
			}
			leader := 0
			if v.State == "Leader" {
				leader = 1
			}
			fmt.Fprintf(out, "gohsm_cluster_leader{member=%q} %d\n", m.ID, leader)
			fmt.Fprintf(out, "gohsm_cluster_commit_index{member=%q} %d\n", m.ID, v.CommitIndex)
			fmt.Fprintf(out, "gohsm_cluster_applied_index{member=%q} %d\n", m.ID, v.AppliedIndex)
			fmt.Fprintf(out, "gohsm_cluster_store_applied_index{member=%q} %d\n", m.ID, v.StoreApplied)
			fmt.Fprintf(out, "gohsm_cluster_lag{member=%q} %d\n", m.ID, lag(commit, v.AppliedIndex))
		}
		return nil
	}
	fmt.Fprintf(out, "leader: %s (%s), term %d, %d member(s)\n", st.LeaderID, st.Leader, st.Term, len(st.Members))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRAFT ADDRESS\tSTATE\tCOMMIT\tAPPLIED\tSTORE APPLIED\tLAG\tTOKENS")
	for _, m := range st.Members {
		v := views[m.ID]
		if v == nil {
			fmt.Fprintf(tw, "%s\t%s\tunreachable: %v\t\t\t\t\t\n", m.ID, m.Addr, errs[m.ID])
			continue
		}
		state := v.State
		if v.Broken != "" {
			state += " (BROKEN: " + v.Broken + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", m.ID, m.Addr, state, v.CommitIndex, v.AppliedIndex, v.StoreApplied, lag(commit, v.AppliedIndex), v.Tokens)
	}
	return tw.Flush()
}

func lag(commit, applied uint64) uint64 {
	if applied >= commit {
		return 0
	}
	return commit - applied
}

// loadCAPaths is loadCA for the cluster CA's file names.
func loadCAPaths(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	ca, err := readCert(certPath)
	if err != nil {
		return nil, nil, err
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA key: %w", err)
	}
	blk, _ := pem.Decode(kb)
	clear(kb)
	if blk == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	clear(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok || !publicKeysEqual(signer.Public(), ca.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not belong to %s", keyPath, certPath)
	}
	return ca, signer, nil
}

// clusterConf is the configuration file's cluster keys:
//
//	raft = HOST:PORT         this member's raft address (mutual TLS, cluster CA only)
//	raft_join = HOST:PORT    a member to ask for admission when dir has no raft state;
//	                         without it, a new cluster is made (init)
//	cluster_ca = FILE        the cluster CA (PEM): only its certificates are members
//	member_cert = FILE       this member's certificate and key, from the cluster CA
//	member_key = FILE
//	node_id = ID             default: kept in DIR/raft/node-id, else m-PORT
//	raft_init = auto | wait  without raft data and raft_join: make a new
//	                         cluster at once (auto, the default) or wait for
//	                         gohsm cluster init (wait)
type clusterConf struct {
	Raft, Join, CA, Cert, Key, NodeID, Init string
}

func (c *clusterConf) set(key, val string) error {
	if val == "" {
		return fmt.Errorf("%s is empty", key)
	}
	switch key {
	case "raft", "raft_join":
		if _, _, err := net.SplitHostPort(val); err != nil {
			return fmt.Errorf("%s %q: want HOST:PORT (%v)", key, val, err)
		}
		if key == "raft" {
			c.Raft = val
		} else {
			c.Join = val
		}
	case "cluster_ca":
		c.CA = val
	case "member_cert":
		c.Cert = val
	case "member_key":
		c.Key = val
	case "node_id":
		c.NodeID = val
	case "raft_init":
		if err := checkRaftInit(key, val); err != nil {
			return err
		}
		c.Init = val
	}
	return nil
}

func (c *clusterConf) check(dev bool) []error {
	if dev {
		return nil
	}
	set := c.Join != "" || c.CA != "" || c.Cert != "" || c.Key != "" || c.NodeID != "" || c.Init != ""
	if c.Raft == "" {
		if set {
			return []error{errors.New("raft_join, raft_init, cluster_ca, member_cert, member_key and node_id need raft = HOST:PORT")}
		}
		return nil
	}
	var errs []error
	for _, k := range []struct{ name, v string }{{"cluster_ca", c.CA}, {"member_cert", c.Cert}, {"member_key", c.Key}} {
		if k.v == "" {
			errs = append(errs, fmt.Errorf("raft: %s is required", k.name))
		}
	}
	return errs
}

// startConfigMember starts the member of a configured appliance (serve
// --config with raft = ...): no dev CA, no dev token; it returns once the
// cluster has a leader and this member has caught up.
func startConfigMember(ctx context.Context, cfg *serveConfig, logger *log.Logger) (*devMember, error) {
	cc := cfg.Cluster
	if err := checkKeyFileMode(cc.Key, "member_key"); err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(cc.Cert, cc.Key)
	if err != nil {
		return nil, fmt.Errorf("member_cert, member_key: %w", err)
	}
	caPEM, err := os.ReadFile(cc.CA)
	if err != nil {
		return nil, fmt.Errorf("cluster_ca: %w", err)
	}
	tlsConf, err := cluster.MemberTLS(caPEM, pair)
	if err != nil {
		return nil, err
	}
	rdir := filepath.Join(cfg.Dir, raftSubdir)
	if err := ensurePrivateDir(rdir); err != nil {
		return nil, err
	}
	// cluster status|join|leave --dir use the member's files from D/raft.
	for _, f := range []struct {
		src, dst string
		mode     os.FileMode
	}{{cc.CA, clusterCACert, 0o644}, {cc.Cert, "member.pem", 0o644}, {cc.Key, "member.key", 0o600}} {
		b, err := os.ReadFile(f.src)
		if err == nil {
			err = writeFileAtomic(filepath.Join(rdir, f.dst), b, f.mode)
		}
		clear(b)
		if err != nil {
			return nil, err
		}
	}
	return startMember(ctx, memberStart{tls: tlsConf, rdir: rdir, storeDir: cfg.Dir, raft: cc.Raft, join: cc.Join, id: cc.NodeID,
		wait: cc.Init == raftInitWait}, logger)
}

// memberStart is what startMember needs.
type memberStart struct {
	tls            *tls.Config
	rdir, storeDir string // the member's raft data; serve's dir (its device)
	raft, join, id string
	wait           bool // no raft data and no join: wait for gohsm cluster init
	dev            bool
}

// startMember starts raft for the member whose raft data is ms.rdir and
// waits until the store is usable: a leader, this member caught up, its
// device the cluster's, and for a joining dev member the cluster's dev
// token. A member waiting for gohsm cluster init waits until ctx ends.
func startMember(ctx context.Context, ms memberStart, logger *log.Logger) (*devMember, error) {
	id, rdir := ms.id, ms.rdir
	if b, err := os.ReadFile(filepath.Join(rdir, "node-id")); err == nil && id == "" {
		id = strings.TrimSpace(string(b))
	}
	if id == "" {
		_, port, _ := net.SplitHostPort(ms.raft)
		id = "m-" + port
	}
	if err := writeFileAtomic(filepath.Join(rdir, "node-id"), []byte(id+"\n"), 0o600); err != nil {
		return nil, err
	}
	// The device key's fingerprint (never the key): every member must
	// have the same device (firmware-sim/cluster/device.go).
	fp, err := device.KeyFingerprint(ms.storeDir)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	node, err := cluster.Start(cluster.Config{
		ID: id, Dir: rdir, Listen: ms.raft, TLS: ms.tls,
		Bootstrap: ms.join == "" && !ms.wait, Join: ms.join, Device: fp,
		DeviceRecord: func() (*cluster.DeviceRecord, error) {
			r, err := device.ExportRecord(ms.storeDir)
			if err != nil {
				return nil, err
			}
			return &cluster.DeviceRecord{State: r.State, Secret: r.Secret}, nil
		},
		Logf: logger.Printf,
	})
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(rdir, "addr"), []byte(node.Addr()+"\n"), 0o600); err != nil {
		node.Close()
		return nil, err
	}
	logger.Printf("cluster: member %s on %s (raft, mutual TLS with cluster certificates)", id, node.Addr())
	if ms.join == "" && !node.Initialised() {
		logger.Printf("cluster: this member has no cluster yet: waiting for gohsm cluster init --dir %s (or --raft %s)", ms.storeDir, node.Addr())
		for !node.Initialised() {
			select {
			case <-ctx.Done():
				node.Close()
				return nil, errors.New("cluster: stopped while waiting for gohsm cluster init")
			case <-time.After(100 * time.Millisecond):
			}
		}
		logger.Printf("cluster: initialised")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err = node.WaitLeader(time.Until(deadline))
		if err == nil {
			err = node.Barrier()
		}
		if err == nil && (!ms.dev || ms.join == "" || node.Status().Tokens > 0) {
			if err := node.CheckDevice(10 * time.Second); err != nil {
				node.Close()
				return nil, err
			}
			return &devMember{node: node}, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			node.Close()
			return nil, fmt.Errorf("cluster: the store did not become usable: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterDeviceCopy is gohsm cluster device-copy: the device record of a
// member (its state and secret S, over the raft port's mutual TLS) into a
// new member's store directory, which has no device yet. The new member
// then boots sealed and the same custodians' shares unseal it; with the
// same record and master key its device key is the cluster's.
func clusterDeviceCopy(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cluster device-copy", flag.ContinueOnError)
	config := fs.String("config", "", "the new member's serve configuration (dir, cluster_ca, member_cert, member_key)")
	dir := fs.String("dir", "", "dev mode: the new member's directory")
	pki := fs.String("pki", "", "dev mode: the PKI directory the members share (the cluster CA)")
	from := fs.String("from", "", "the raft address of a member that has the device")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *from == "" || (*config == "") == (*dir == "") || (*dir != "" && *pki == "") {
		return errors.New("device-copy: want --from RADDR and either --config FILE or --dir D --pki P")
	}
	var (
		storeDir string
		conf     *tls.Config
		err      error
	)
	if *config != "" {
		cfg, err := loadServeConfig(*config)
		if err != nil {
			return err
		}
		cc := cfg.Cluster
		if cc.Raft == "" {
			return fmt.Errorf("%s: not a cluster member (no raft = ...)", *config)
		}
		pair, err := tls.LoadX509KeyPair(cc.Cert, cc.Key)
		if err != nil {
			return fmt.Errorf("member_cert, member_key: %w", err)
		}
		caPEM, err := os.ReadFile(cc.CA)
		if err != nil {
			return fmt.Errorf("cluster_ca: %w", err)
		}
		if conf, err = cluster.MemberTLS(caPEM, pair); err != nil {
			return err
		}
		storeDir = cfg.Dir
	} else {
		if storeDir, err = filepath.Abs(*dir); err != nil {
			return err
		}
		rdir := filepath.Join(storeDir, raftSubdir)
		if err := ensurePrivateDir(rdir); err != nil {
			return err
		}
		if conf, err = devMemberTLS(*pki, rdir); err != nil {
			return err
		}
	}
	if device.HasDevice(storeDir) {
		return fmt.Errorf("%s already has a device: device-copy is for a new member", storeDir)
	}
	c, err := cluster.Dial(*from, conf, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Status()
	if err != nil {
		return err
	}
	rec, err := c.DeviceRecord()
	if err != nil {
		return fmt.Errorf("device-copy from %s: %w", *from, err)
	}
	r := &device.Record{State: rec.State, Secret: rec.Secret}
	defer r.Wipe()
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return err
	}
	if err := device.ImportRecord(storeDir, r); err != nil {
		return err
	}
	fp, err := device.KeyFingerprint(storeDir)
	if err != nil {
		return err
	}
	if fp != st.Device {
		return fmt.Errorf("device-copy: the copy's fingerprint %s is not member %s's %s (remove %s/device)", fp, st.ID, st.Device, storeDir)
	}
	fmt.Fprintf(out, "device record of member %s copied into %s (device key %s)\n", st.ID, storeDir, fp)
	fmt.Fprintf(out, "start the member; it boots sealed: gohsm unseal --dir %s SHARE_FILE... (the same custodians' shares)\n", storeDir)
	return nil
}
