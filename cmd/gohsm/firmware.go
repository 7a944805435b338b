package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/device"
	"github.com/gohsm/gohsm/hsm"
)

// gohsm firmware: signed firmware images (docs/firmware.md).
//
//	gohsm firmware keygen --out signer.key --pub signer.pub
//	gohsm firmware sign --key signer.key --svn N [--version V] [--binary build/gohsm] [--library build/libgohsm.so] --out image.json
//	gohsm firmware verify [--dir D | --signer signer.pub] image.json
//	gohsm firmware install --dir D [--share F ... [--identity K.pem]] image.json
func firmwareCmd(args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, `usage:
  gohsm firmware keygen --out signer.key --pub signer.pub     an Ed25519 firmware signing key
  gohsm firmware sign --key signer.key --svn N [--version V] [--binary F] [--library F] --out image.json
                                          sign a manifest: version, security version number, the
                                          build's SHA-256 digests, the algorithms enabled
  gohsm firmware verify [--dir D | --signer signer.pub] image.json
                                          check an image (against a device's pinned signer and minimum svn)
  gohsm firmware install --dir D image.json   install it on the running appliance (or, stopped: --share F ...)
`)
		return nil
	}
	switch args[0] {
	case "keygen":
		return firmwareKeygen(args[1:])
	case "sign":
		return firmwareSign(args[1:])
	case "verify":
		return firmwareVerify(args[1:])
	case "install":
		return firmwareInstall(args[1:])
	}
	return fmt.Errorf("unknown subcommand %q (gohsm firmware help)", args[0])
}

func firmwareKeygen(args []string) error {
	fs := flag.NewFlagSet("firmware keygen", flag.ContinueOnError)
	out := fs.String("out", "", "the private key file to write (PKCS#8 PEM, mode 0600)")
	pub := fs.String("pub", "", "the public key file to write (PEM): give it to gohsm device init --firmware-signer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *pub == "" {
		return errors.New("usage: gohsm firmware keygen --out signer.key --pub signer.pub")
	}
	k, err := device.WriteSigningKey(*out, *pub, rand.Reader)
	if err != nil {
		return err
	}
	fmt.Printf("firmware signing key %s written: %s (private), %s (public)\n", device.KeyID(k), *out, *pub)
	return nil
}

// defaultBuildFile is name next to the running gohsm, if it is there.
func defaultBuildFile(name string) string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), name)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func firmwareSign(args []string) error {
	fs := flag.NewFlagSet("firmware sign", flag.ContinueOnError)
	key := fs.String("key", "", "the firmware signing key (gohsm firmware keygen)")
	svn := fs.Uint("svn", 0, "the security version number: raise it with every security fix")
	version := fs.String("version", fmt.Sprintf("%d.%d", hsm.Version.Major, hsm.Version.Minor), "the version the build reports (C_GetInfo)")
	binary := fs.String("binary", defaultBuildFile("gohsm"), "the gohsm binary of the build")
	library := fs.String("library", defaultBuildFile("libgohsm.so"), "the libgohsm.so of the build (\"\": none)")
	algs := fs.String("algorithms", "", "the algorithm families enabled, comma separated (default: every self-test's)")
	out := fs.String("out", "", "the image file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" || *out == "" || *binary == "" {
		return errors.New("usage: gohsm firmware sign --key signer.key --svn N --binary build/gohsm [--library build/libgohsm.so] --out image.json")
	}
	k, err := device.ReadSigningKey(*key)
	if err != nil {
		return err
	}
	m := &device.Manifest{Format: 1, Version: *version, SVN: uint32(*svn), Files: map[string]string{}, Created: time.Now().UTC().Format(time.RFC3339)}
	for role, path := range map[string]string{device.RoleBinary: *binary, device.RoleLibrary: *library} {
		if path == "" {
			continue
		}
		if m.Files[role], err = device.FileDigest(path); err != nil {
			return err
		}
	}
	if *algs != "" {
		m.Algorithms = strings.Split(*algs, ",")
	}
	im, err := device.SignImage(m, k)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, im.Marshal(), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: firmware %s svn %d, signed by %s\n", *out, m.Version, m.SVN, device.KeyID(k.Public().(ed25519.PublicKey)))
	return nil
}

func firmwareVerify(args []string) error {
	fs := flag.NewFlagSet("firmware verify", flag.ContinueOnError)
	dir := fs.String("dir", "", "check against this device's pinned signer and minimum svn")
	signer := fs.String("signer", "", "check against this signer's public key")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: gohsm firmware verify [--dir D | --signer signer.pub] image.json")
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	im, err := device.ParseImage(b)
	if err != nil {
		return err
	}
	var pinned []byte
	var min uint32
	switch {
	case *signer != "":
		if pinned, err = device.ReadSignerPublic(*signer); err != nil {
			return err
		}
	case *dir != "":
		in, err := deviceInfo(*dir)
		if err != nil {
			return err
		}
		pk, err := device.PinnedSigner(*dir)
		if err != nil {
			return err
		}
		pinned, min = pk, in.MinSVN
	}
	m, err := im.Verify(pinned, min)
	if err != nil {
		return err
	}
	how := "its own signer (give --signer or --dir to check whom it trusts)"
	if pinned != nil {
		how = "the trusted signer " + device.KeyID(pinned)
	}
	fmt.Printf("%s: good: firmware %s svn %d, signed by %s\n", pos[0], m.Version, m.SVN, how)
	for role, d := range m.Files {
		fmt.Printf("  %-12s sha256 %s\n", role, d)
	}
	return nil
}

// deviceInfo is the running appliance's view of the device, or the files'.
func deviceInfo(dir string) (device.Info, error) {
	if resp, err := device.AdminCall(adminSocket(dir), device.AdminRequest{Op: "status"}); err == nil {
		return resp.Info, nil
	}
	d, err := device.Open(device.Options{Dir: dir, SkipSelftests: true})
	if err != nil {
		return device.Info{}, err
	}
	return d.Info(), nil
}

func firmwareInstall(args []string) error {
	fs := flag.NewFlagSet("firmware install", flag.ContinueOnError)
	dir := fs.String("dir", "", "the appliance's store directory")
	var shares listFlag
	fs.Var(&shares, "share", "with the appliance stopped: share files (M of them) that unseal the device for the install")
	identity := fs.String("identity", "", "the custodian private key for encrypted shares")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *dir == "" || len(pos) != 1 {
		return errors.New("usage: gohsm firmware install --dir D image.json")
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	if len(shares) == 0 {
		resp, err := device.AdminCall(adminSocket(*dir), device.AdminRequest{Op: "install", Image: b})
		if err != nil {
			return fmt.Errorf("no appliance answers on %s (%v): with it stopped, give --share FILE (M of them)", adminSocket(*dir), err)
		}
		if !resp.OK {
			return errors.New(resp.Error)
		}
		fmt.Println(resp.Message)
		return nil
	}
	d, err := offlineUnseal(*dir, shares, *identity)
	if err != nil {
		return err
	}
	m, err := d.Install(b)
	if err != nil {
		return err
	}
	fmt.Printf("installed firmware %s svn %d; the minimum security version is now %d\n", m.Version, m.SVN, d.Info().MinSVN)
	return nil
}
