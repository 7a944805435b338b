// Command gohsm is the single gohsm binary: `gohsm run` prepares the
// default token store and demo token and prints how to use the module;
// token, bench and conformance are the other tools; serve and fixture join
// as the appliance and the CI fixture land.
package main

import (
	"fmt"
	"os"
)

type command struct {
	name, summary string
	run           func(args []string) error
}

func commands() []command {
	return []command{
		{"run", "create the default token store and a demo token, print how to use the module", runCmd},
		{"serve", "the network HSM appliance: --config FILE, or --dev for a trial (gohsm serve -h)", serveCmd},
		{"cluster", "a cluster of appliances on one replicated store: status, join, leave, metrics (gohsm cluster help)", clusterCmd},
		{"pki", "a development CA, server and client certificates for the appliance (gohsm pki help)", pkiCmd},
		{"fixture", "a throw-away token for a test suite and its environment: up, env, down (gohsm fixture help)", fixtureCmd},
		{"token", "list, check, back up and restore tokens (gohsm token for help)", tokenCmd},
		{"conformance", "run the PKCS#11 conformance suite against modules (gohsm conformance -h)", conformanceCmd},
		{"bench", "benchmark modules through the C ABI (gohsm bench -h)", benchCmd},
		{"audit", "verify the hash chain of an appliance or crypto gateway audit log (gohsm audit -h)", auditCmd},
		{"transit", "the crypto gateway's common calls: create, encrypt, decrypt, sign, verify, ... (gohsm transit -h)", transitCmd},
		{"faults", "check fault plans, set an appliance's plan at run time, list latency profiles (gohsm faults help)", faultsCmd},
		{"selftest", "run the power-on self-tests with timings, or --list their names (docs/firmware.md)", selftestCmd},
		{"device", "the appliance's key ceremony, status, seal, tamper, adopt (gohsm device help)", deviceCmd},
		{"unseal", "present custodians' shares to the running appliance (gohsm unseal --dir D SHARE_FILE...)", unsealCmd},
		{"firmware", "signed firmware images: keygen, sign, verify, install (gohsm firmware help)", firmwareCmd},
		{"version", "print the version", func([]string) error { fmt.Println("gohsm", version); return nil }},
	}
}

const version = "0.1.0"

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gohsm <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", c.name, c.summary)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	for _, c := range commands() {
		if c.name == os.Args[1] {
			if err := c.run(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "gohsm "+c.name+":", err)
				os.Exit(1)
			}
			return
		}
	}
	usage()
	os.Exit(2)
}
