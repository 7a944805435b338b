package main

import (
	"bytes"
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
	raft, join, pki, id string
}

func (c *devCluster) register(fs *flag.FlagSet) {
	fs.StringVar(&c.raft, "raft", "", "dev mode: form or join a cluster; this member's raft address, loopback (docs/cluster.md)")
	fs.StringVar(&c.join, "join", "", "dev mode with --raft: the raft address of a member of the cluster to join (none: a new cluster)")
	fs.StringVar(&c.pki, "pki", "", "dev mode: a PKI directory shared by the members (default D/pki); the cluster CA is made in it")
	fs.StringVar(&c.id, "node-id", "", "dev mode with --raft: this member's id (default: kept in D/raft/node-id, else m-PORT)")
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
func startDevMember(c *devCluster, dir, pkiDir string, logger *log.Logger) (*devMember, knownToken, bool, error) {
	if err := checkLoopback(c.raft); err != nil {
		return nil, knownToken{}, false, fmt.Errorf("--raft: %w", err)
	}
	rdir := filepath.Join(dir, raftSubdir)
	if err := ensurePrivateDir(rdir); err != nil {
		return nil, knownToken{}, false, err
	}
	tlsConf, err := devMemberTLS(pkiDir, rdir)
	if err != nil {
		return nil, knownToken{}, false, err
	}
	m, err := startMember(tlsConf, rdir, c.raft, c.join, c.id, true, logger)
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
  gohsm cluster status --dir D [--raft ADDR]          leader, members, commit and applied index, lag
  gohsm cluster join   --dir D [--raft ADDR] --id ID --addr RADDR   add a member (a voter)
  gohsm cluster leave  --dir D [--raft ADDR] --id ID  remove a member (leaving, or dead)
  gohsm cluster metrics --dir D [--raft ADDR]         the status as Prometheus text
  gohsm cluster backup  --dir D --out F (--passphrase-file P | --recipient PUB.pem)
        the whole replicated store (sealed as stored), encrypted like a token backup
  gohsm cluster restore --dir D --in F (--passphrase-file P | --identity KEY.pem)
        a backup into a new cluster (one without tokens: serve --config members)

D is a member's directory (its D/raft holds the member certificate used to
connect); --raft is the member to ask (default: D's own). A new cluster is
made by its first member: gohsm serve --raft RADDR without --join (init);
members join with --join RADDR (docs/cluster.md).
`)
}

func clusterMain(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		clusterUsage(out)
		return nil
	}
	sub := args[0]
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
	case "join":
		if *id == "" || *raddr == "" {
			return errors.New("join: want --id ID --addr RADDR")
		}
		return c.Join(*id, *raddr)
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
type clusterConf struct {
	Raft, Join, CA, Cert, Key, NodeID string
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
	}
	return nil
}

func (c *clusterConf) check(dev bool) []error {
	if dev {
		return nil
	}
	set := c.Join != "" || c.CA != "" || c.Cert != "" || c.Key != "" || c.NodeID != ""
	if c.Raft == "" {
		if set {
			return []error{errors.New("raft_join, cluster_ca, member_cert, member_key and node_id need raft = HOST:PORT")}
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
func startConfigMember(cfg *serveConfig, logger *log.Logger) (*devMember, error) {
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
	return startMember(tlsConf, rdir, cc.Raft, cc.Join, cc.NodeID, false, logger)
}

// startMember starts raft for the member whose raft data is rdir and waits
// until the store is usable: a leader, this member caught up, and for a
// joining dev member the cluster's dev token.
func startMember(tlsConf *tls.Config, rdir, raftAddr, join, id string, dev bool, logger *log.Logger) (*devMember, error) {
	if b, err := os.ReadFile(filepath.Join(rdir, "node-id")); err == nil && id == "" {
		id = strings.TrimSpace(string(b))
	}
	if id == "" {
		_, port, _ := net.SplitHostPort(raftAddr)
		id = "m-" + port
	}
	if err := writeFileAtomic(filepath.Join(rdir, "node-id"), []byte(id+"\n"), 0o600); err != nil {
		return nil, err
	}
	node, err := cluster.Start(cluster.Config{
		ID: id, Dir: rdir, Listen: raftAddr, TLS: tlsConf,
		Bootstrap: join == "", Join: join,
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
	deadline := time.Now().Add(60 * time.Second)
	for {
		err = node.WaitLeader(time.Until(deadline))
		if err == nil {
			err = node.Barrier()
		}
		if err == nil && (!dev || join == "" || node.Status().Tokens > 0) {
			return &devMember{node: node}, nil
		}
		if time.Now().After(deadline) {
			node.Close()
			return nil, fmt.Errorf("cluster: the store did not become usable: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
