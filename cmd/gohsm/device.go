package main

import (
	"crypto/ecdh"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gohsm/gohsm/firmware-sim/audit"
	"github.com/gohsm/gohsm/firmware-sim/device"
	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/hsm"
)

// gohsm device: the appliance's lifecycle and custody (docs/firmware.md).
//
//	gohsm device init --dir D --shares N --threshold M [--custodian-key K.pem ...] [--firmware-signer S.pub] [--zeroise-after-so-failures N] --out DIR
//	gohsm device status --dir D
//	gohsm device seal --dir D
//	gohsm device tamper --dir D
//	gohsm device adopt --dir D [--share F ...]
//	gohsm unseal --dir D [--identity K.pem] SHARE_FILE...

func deviceCmd(args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, `usage:
  gohsm device init --dir D --shares N --threshold M --out DIR [--custodian-key K.pem ...]
                    [--firmware-signer SIGNER.pub] [--zeroise-after-so-failures N]
                                          the key ceremony: a master key split M-of-N into DIR/share-I.json
  gohsm device status --dir D             the device's state (through the running appliance if there is one)
  gohsm device seal --dir D               back to sealed (the running appliance)
  gohsm device tamper --dir D             zeroise: destroy the device secret; nothing can be read again
  gohsm device adopt --dir D [--share F]...  put tokens made without the device under its key
  gohsm unseal --dir D [--identity K.pem] SHARE_FILE...   present shares to the running appliance
`)
		return nil
	}
	switch args[0] {
	case "init":
		return deviceInit(args[1:])
	case "status", "seal", "tamper", "adopt":
		return deviceAdmin(args[0], args[1:])
	}
	return fmt.Errorf("unknown subcommand %q (gohsm device help)", args[0])
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func deviceInit(args []string) error {
	fs := flag.NewFlagSet("device init", flag.ContinueOnError)
	dir := fs.String("dir", "", "the appliance's store directory (serve's dir)")
	n := fs.Int("shares", 5, "shares to make (N)")
	m := fs.Int("threshold", 3, "shares needed to unseal (M)")
	out := fs.String("out", "", "where to write the share files (a new or empty directory)")
	signer := fs.String("firmware-signer", "", "the firmware signing public key the device will trust (gohsm firmware keygen)")
	soZero := fs.Int("zeroise-after-so-failures", 0, "zeroise after this many consecutive failed SO logins (0: never)")
	var custodians listFlag
	fs.Var(&custodians, "custodian-key", "a custodian's X25519 or P-256 public key (PEM; gohsm token keygen), or none: one per share, in order (or the flag not at all: every share in the clear)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *dir == "" || *out == "" {
		return errors.New("usage: gohsm device init --dir D --shares N --threshold M --out DIR [--custodian-key K.pem ...]")
	}
	var keys []*ecdh.PublicKey
	if len(custodians) > 0 {
		if len(custodians) != *n {
			return fmt.Errorf("%d --custodian-key for %d shares: give one per share", len(custodians), *n)
		}
		for _, p := range custodians {
			if p == "none" {
				keys = append(keys, nil) // this share in the clear
				continue
			}
			k, err := readRecipient(p)
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
	}
	opts := device.InitOptions{Shares: *n, Threshold: *m, Custodians: keys, ZeroiseAfterSOFailures: *soZero}
	if *signer != "" {
		if opts.Signer, err = device.ReadSignerPublic(*signer); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	if ents, _ := os.ReadDir(*out); len(ents) > 0 {
		return fmt.Errorf("--out %s is not empty: share files are never overwritten", *out)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	c, err := device.Init(*dir, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, sh := range c.Shares {
		p := filepath.Join(*out, fmt.Sprintf("share-%d.json", sh.Index))
		if err := writeFileAtomic(p, sh.Marshal(), 0o600); err != nil {
			return fmt.Errorf("share %d: %w (the device is initialised but its shares are not all written: remove %s and hold the ceremony again)", sh.Index, err, device.StatePath(*dir))
		}
	}
	adopted, err := c.Adopt()
	if err != nil {
		return fmt.Errorf("adopting the store's tokens: %w", err)
	}
	fmt.Printf("device %s initialised in %s: %d-of-%d\n", c.ID, *dir, *m, *n)
	for _, sh := range c.Shares {
		how := "in the clear: give it to its custodian, and delete it here"
		if sh.Encrypted() {
			how = "encrypted to custodian key " + sh.Recipient
		}
		fmt.Printf("  %s  (%s)\n", filepath.Join(*out, fmt.Sprintf("share-%d.json", sh.Index)), how)
	}
	if len(adopted) > 0 {
		fmt.Printf("tokens now under the device's master key: %q\n", adopted)
	}
	if opts.Signer != nil {
		fmt.Printf("firmware signer pinned: %s\n", device.KeyID(opts.Signer))
	}
	fmt.Printf("start the appliance (gohsm serve --config ...); it boots sealed: gohsm unseal --dir %s SHARE_FILE (%d of them)\n", *dir, *m)
	return nil
}

// adminSocket is D/admin.sock.
func adminSocket(dir string) string { return filepath.Join(dir, device.AdminSocket) }

func deviceAdmin(op string, args []string) error {
	fs := flag.NewFlagSet("device "+op, flag.ContinueOnError)
	dir := fs.String("dir", "", "the appliance's store directory")
	reason := fs.String("reason", "", "tamper: why (recorded in the audit log)")
	var shares listFlag
	fs.Var(&shares, "share", "adopt without a running appliance: a share file (M of them)")
	identity := fs.String("identity", "", "the custodian private key that opens encrypted shares")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *dir == "" {
		return fmt.Errorf("usage: gohsm device %s --dir D", op)
	}
	resp, err := device.AdminCall(adminSocket(*dir), device.AdminRequest{Op: op, Reason: *reason})
	if err != nil {
		// No appliance running: what can be done on the files alone.
		switch {
		case op == "status":
			return offlineStatus(*dir)
		case op == "tamper":
			d, err := device.Open(device.Options{Dir: *dir, SkipSelftests: true})
			if err != nil {
				return err
			}
			if err := d.Zeroise(orDefault(*reason, "tamper (gohsm device tamper, appliance not running)")); err != nil {
				return err
			}
			fmt.Println("zeroised: the device secret is destroyed; no share can unseal this device again")
			return nil
		case op == "adopt" && len(shares) > 0:
			d, err := offlineUnseal(*dir, shares, *identity)
			if err != nil {
				return err
			}
			labels, err := d.Adopt()
			if err != nil {
				return err
			}
			fmt.Printf("adopted %d token(s) %q\n", len(labels), labels)
			return nil
		}
		return fmt.Errorf("no appliance answers on %s (%v)", adminSocket(*dir), err)
	}
	printInfo(resp)
	if !resp.OK {
		return errors.New(resp.Error)
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func printInfo(resp *device.AdminResponse) {
	in := resp.Info
	if resp.Message != "" {
		fmt.Println(resp.Message)
	}
	fmt.Printf("state: %s", in.State)
	if in.Reason != "" {
		fmt.Printf(" (%s)", in.Reason)
	}
	fmt.Println()
	if in.DeviceID != "" {
		fmt.Printf("device: %s, %d-of-%d", in.DeviceID, in.Threshold, in.Shares)
		if in.State == "sealed" {
			fmt.Printf(", %d share(s) presented", in.Presented)
		}
		fmt.Println()
	}
	fmt.Printf("firmware: %s; minimum svn %d", in.Firmware, in.MinSVN)
	if in.Signer != "" {
		fmt.Printf("; signer %s", in.Signer)
	}
	fmt.Println()
	if in.BootMS > 0 {
		fmt.Printf("boot: self-tests %.1f ms, power-on to %s %.1f ms\n", in.SelftestsMS, in.BootState, in.BootMS)
	}
}

func offlineStatus(dir string) error {
	if !device.HasDevice(dir) {
		fmt.Printf("state: factory (no device in %s: gohsm device init holds the ceremony)\n", dir)
		return nil
	}
	d, err := device.Open(device.Options{Dir: dir, SkipSelftests: true})
	if err != nil {
		return err
	}
	in := d.Info()
	if in.State == "sealed" {
		in.State = "initialised (appliance not running)"
		in.Reason = ""
	}
	in.BootMS = 0
	printInfo(&device.AdminResponse{Info: in})
	return nil
}

// readShareFile reads a share file and, if it is encrypted to a custodian,
// opens it with identity.
func readShareFile(path, identity string) (*device.Share, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sh, err := device.ParseShare(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !sh.Encrypted() {
		return sh, nil
	}
	if identity == "" {
		return nil, fmt.Errorf("%s: share %d is encrypted to custodian key %s: give --identity K.pem", path, sh.Index, sh.Recipient)
	}
	id, err := readIdentity(identity)
	if err != nil {
		return nil, err
	}
	v, err := sh.Open(id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer clear(v)
	return &device.Share{Format: 1, Device: sh.Device, Index: sh.Index, Threshold: sh.Threshold, Shares: sh.Shares, Value: fmt.Sprintf("%x", v)}, nil
}

func offlineUnseal(dir string, shares []string, identity string) (*device.Device, error) {
	d, err := device.Open(device.Options{Dir: dir, SkipSelftests: true})
	if err != nil {
		return nil, err
	}
	for _, p := range shares {
		sh, err := readShareFile(p, identity)
		if err != nil {
			return nil, err
		}
		if _, err := d.Present(sh); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if st := d.Status(); st.State.String() != "operational" {
		return nil, fmt.Errorf("%d share(s) do not unseal: the device is %s", len(shares), st.State)
	}
	return d, nil
}

// gohsm unseal --dir D [--identity K.pem] SHARE_FILE...
func unsealCmd(args []string) error {
	fs := flag.NewFlagSet("unseal", flag.ContinueOnError)
	dir := fs.String("dir", "", "the appliance's store directory (its admin socket is D/admin.sock)")
	identity := fs.String("identity", "", "the custodian's private key, for a share encrypted to it")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *dir == "" || len(pos) == 0 {
		return errors.New("usage: gohsm unseal --dir D [--identity K.pem] SHARE_FILE...")
	}
	var last *device.AdminResponse
	for _, p := range pos {
		sh, err := readShareFile(p, *identity)
		if err != nil {
			return err
		}
		resp, err := device.AdminCall(adminSocket(*dir), device.AdminRequest{Op: "unseal", Share: sh})
		if err != nil {
			return fmt.Errorf("no appliance answers on %s: %w", adminSocket(*dir), err)
		}
		if !resp.OK {
			return fmt.Errorf("%s: %s", p, resp.Error)
		}
		last = resp
		if pr := resp.Progress; pr != nil && resp.Info.State != "operational" {
			fmt.Printf("%s: accepted (%d of %d)\n", p, pr.Have, pr.Need)
		}
	}
	fmt.Printf("state: %s\n", last.Info.State)
	return nil
}

// applianceDevice is the running appliance's device: its guard over every
// connection's engine, the admin socket and the SIGUSR1 handler.
type applianceDevice struct {
	dev  *device.Device
	stop func()
}

// unsealShares is serve's --unseal-shares (for tests and scripted trials):
// the files presented at start.
var unsealShares listFlag

// deviceAudit puts the device's transitions in the appliance's audit log.
type deviceAudit struct{ log *audit.Log }

func (a deviceAudit) DeviceEvent(ev, note string) error {
	_, err := a.log.Append(audit.Record{Who: "device", Call: "device." + ev, Note: note})
	return err
}

// startDevice boots the device (power-on self-tests, its lifecycle state)
// and puts every connection's engine behind its guard.
func (a *appliance) startDevice(sc *server.Config) error {
	cfg := a.cfg
	exe, _ := os.Executable()
	o := device.Options{Dir: cfg.Dir, Profile: cfg.Profile, FailSelftest: os.Getenv("GOHSM_FAIL_SELFTEST"),
		Binary: exe, Role: device.RoleBinary, Logf: a.logger.Printf}
	if a.audit != nil {
		o.Audit = deviceAudit{a.audit}
	}
	d, err := device.Open(o)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	rep := d.Report()
	st := d.Status()
	a.logger.Printf("power-on self-tests: %d run in %.1f ms; boot to %s in %.1f ms%s", len(rep.Results),
		float64(rep.Took.Microseconds())/1000, st.State, float64(d.BootTime().Microseconds())/1000, reasonSuffix(st.Reason))
	sc.Open = func(identity string) (hsm.Backend, error) {
		return d.Guard(func(key []byte) (hsm.Backend, error) { return engineOpenerKey(cfg, key)(identity) }), nil
	}
	ad := &applianceDevice{dev: d}
	stopAdmin, err := device.ServeAdmin(d, adminSocket(cfg.Dir))
	if err != nil {
		// A store with a device needs it to be unsealed (or
		// --unseal-shares); one without works without it.
		if device.HasDevice(cfg.Dir) && len(unsealShares) == 0 {
			return fmt.Errorf("admin socket: %w", err)
		}
		a.logger.Printf("WARNING: admin socket %s: %v (gohsm device/unseal/firmware install cannot reach this appliance)", adminSocket(cfg.Dir), err)
		stopAdmin = func() error { return nil }
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			if err := d.Zeroise("tamper (SIGUSR1)"); err != nil {
				a.logger.Printf("SIGUSR1: zeroise: %v", err)
			}
		}
	}()
	ad.stop = func() {
		signal.Stop(usr1)
		close(usr1)
		stopAdmin()
	}
	a.device = ad
	shares := unsealShares
	unsealShares = nil
	for _, p := range shares {
		sh, err := readShareFile(p, "")
		if err == nil {
			_, err = d.Present(sh)
		}
		if err != nil {
			ad.stop()
			return fmt.Errorf("--unseal-shares %s: %w", p, err)
		}
	}
	if len(shares) > 0 {
		a.logger.Printf("device: %s after %d share(s)", d.Status().State, len(shares))
	}
	return nil
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func (a *appliance) stopDevice() {
	if a.device != nil && a.device.stop != nil {
		a.device.stop()
		a.device.stop = nil
	}
}
