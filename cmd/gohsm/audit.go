package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gohsm/gohsm/firmware-sim/audit"
)

const auditUsage = `usage: gohsm audit verify FILE [--key-file K] [--head SEQ:HASH]

verify    check the hash chain of an appliance or crypto gateway audit log (every record's
          form, sequence number, link and hash): print the number of records
          and "ok", or name the first broken record and exit 1.

  --key-file K     the log's HMAC key: the bytes of file K as they are (a keyed
                   log needs its key; a plain log refuses one)
  --head SEQ:HASH  also check that record SEQ still has hash HASH: a head kept
                   outside the log (as gohsm serve logs at start) shows a log
                   cut short or replaced, which the chain alone cannot`

// auditCmd is `gohsm audit`: offline checks of an appliance audit log.
func auditCmd(args []string) error { return auditMain(args, os.Stdout, os.Stderr) }

func auditMain(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, auditUsage)
		return errors.New("no audit command")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stderr, auditUsage)
		return nil
	case "verify":
		return auditVerify(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, auditUsage)
	return fmt.Errorf("unknown audit command %q", args[0])
}

func auditVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, auditUsage) }
	keyFile := fs.String("key-file", "", "the log's HMAC key file")
	headFlag := fs.String("head", "", "SEQ:HASH of a record the log must hold")
	// Flags may come before or after FILE.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files, args = append(files, fs.Arg(0)), fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, auditUsage)
		return errors.New("audit verify takes one FILE")
	}
	var key []byte
	if *keyFile != "" {
		k, err := audit.ReadKeyFile(*keyFile)
		if err != nil {
			return err
		}
		key = k
		defer clear(key)
	}
	var headSeq uint64
	var headHash string
	if *headFlag != "" {
		s, h, ok := strings.Cut(*headFlag, ":")
		n, err := strconv.ParseUint(s, 10, 64)
		if !ok || err != nil || n == 0 || len(h) != 64 {
			return fmt.Errorf("--head %q: want SEQ:HASH (a record number and 64 hex digits)", *headFlag)
		}
		headSeq, headHash = n, strings.ToLower(h)
	}

	f, err := os.Open(files[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if isGatewayAuditLog(f) { // the crypto gateway's log (cmd/gohsm/audit_gateway.go)
		return verifyGatewayAudit(f, files[0], key, headSeq, headHash, stdout)
	}
	var chain, last string
	var lastSeq uint64
	headSeen := false
	n, err := audit.Scan(f, key, func(r *audit.Record) error {
		if r.Call == audit.CallGenesis {
			chain = r.Chain
		}
		if r.Seq == headSeq {
			if r.Hash != headHash {
				return fmt.Errorf("record %d has hash %s, not the head %s kept elsewhere: the log was rewritten or replaced", r.Seq, r.Hash, headHash)
			}
			headSeen = true
		}
		lastSeq, last = r.Seq, r.Hash
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w (%d good records before it)", files[0], err, n)
	}
	if headSeq != 0 && !headSeen {
		return fmt.Errorf("%s: the chain is intact but ends at record %d, before the head %d kept elsewhere: the log was cut short or replaced", files[0], lastSeq, headSeq)
	}
	fmt.Fprintf(stdout, "%d records ok\nchain %s, head %d %s\n", n, chain, lastSeq, last)
	return nil
}
