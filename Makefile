# gohsm — see README.md. `make run` and `make test` do all set-up on a fresh
# Debian 12 machine with Go; everything else here is a step of those two.
GO      ?= go
BUILD   ?= build
export CGO_ENABLED = 1

GOFILES := $(shell find . -name '*.go' -not -path './build/*' 2>/dev/null) go.mod go.sum

.PHONY: all build deps deps-run run test test-go test-race test-clients test-gosuites test-remote test-fixture test-clients-softhsm conformance bench bench-report bench-chost bench-fixture bench-remote bench-gateway torture cluster-torture cluster-clients cluster-bench fuzz vet install clean hashmldsa-vectors

all: build

deps:
	@scripts/install-deps.sh test

deps-run:
	@scripts/install-deps.sh run

build: $(BUILD)/libgohsm.so $(BUILD)/gohsm

$(BUILD)/libgohsm.so: $(GOFILES) $(wildcard pkcs11shim/*.c pkcs11shim/*.h)
	@mkdir -p $(BUILD)
	$(GO) build -buildmode=c-shared -trimpath -o $@ ./pkcs11shim
	@rm -f $(BUILD)/libgohsm.h

$(BUILD)/gohsm: $(GOFILES)
	@mkdir -p $(BUILD)
	$(GO) build -trimpath -o $@ ./cmd/gohsm

# The appliance in dev mode on the default token store (the one `gohsm run`
# and the module use), in the foreground until Ctrl-C; it prints lines for
# the module in local and in remote mode (docs/appliance.md).
run: deps-run build
	@$(BUILD)/gohsm serve --dev --module $(CURDIR)/$(BUILD)/libgohsm.so

vet:
	$(GO) vet ./...

# The conformance suite's results go to build/test-results for test-remote
# to compare with its remote run.
test-go:
	GOHSM_CONFORMANCE_RESULTS=$(CURDIR)/$(BUILD)/test-results/conformance-local.json $(GO) test -count=1 ./...

# The engine, the store and the C ABI under the race detector: the engine
# runs sessions without a global lock, so a data race is a bug to catch here.
# The store's crash-safety runs (kill -9 of child processes, the 100,000-
# object token) test durability, not races, and already ran in test-go.
test-race:
	$(GO) test -race -count=1 ./hsm ./pkcs11shim ./firmware-sim/... ./gateway/...
	$(GO) test -race -count=1 -skip 'TestTorture$$|TestCrashKill9|TestLargeToken|TestScaleOpenFind' ./tokens

# Real PKCS#11 clients (pkcs11-tool, p11tool, OpenSSL, Java, PyKCS11, OpenSSH,
# NSS) and the C ABI sweep, against our module.
test-clients: build
	@RESULTS_OUT=$(CURDIR)/$(BUILD)/test-results/clients-local.txt tests/clients/run.sh $(CURDIR)/$(BUILD)/libgohsm.so

# The same scripts against SoftHSMv2, to keep them honest.
test-clients-softhsm:
	@tests/clients/run.sh /usr/lib/softhsm/libsofthsm2.so

# crypto11's and miekg/pkcs11's own test suites, loading libgohsm.so into a
# second Go runtime in the same process.
test-gosuites: build
	@RESULTS_OUT=$(CURDIR)/$(BUILD)/test-results/gosuites-local.txt tests/gosuites/run.sh $(CURDIR)/$(BUILD)/libgohsm.so

# The real-client, Go client and conformance suites again, through
# libgohsm.so in remote mode: each fresh store behind a gohsm serve of its
# own on loopback; then identities and TLS refusals end to end. Each must
# have exactly the results its local run (above) left in build/test-results.
test-remote: deps build
	@tests/remote/run.sh $(CURDIR)/$(BUILD)/libgohsm.so

# The CI fixture (docs/fixture.md): the sample workflow run locally, step by
# step, with the GitHub Action's own script (it builds gohsm and libgohsm.so
# as the action does, into a scratch folder), then the sample project's go
# test (hsmtest, crypto11 on the fixture's token), pkcs11-tool and a fault
# plan. About 15 seconds.
test-fixture: deps
	@tests/fixture/workflow.sh

# The conformance suite against SoftHSMv2 and our module, side by side:
# build/conformance/<module>.json and docs/conformance.md.
# The vectors group runs the pinned Wycheproof release and NIST ACVP data
# (internal/vectors) through each module's C ABI.
WYCHEPROOF = github.com/C2SP/wycheproof@v0.0.0-20250901140545-b51abcfb8daf
ACVP = github.com/geomys/acvp-testdata@v0.0.0-20251201200548-d893de8b8b1c
conformance: deps build
	$(GO) run ./conformance/cmd/conformance -out $(BUILD)/conformance -doc docs/conformance.md \
		-wycheproof "$$(cd /tmp && $(GO) mod download -json $(WYCHEPROOF) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p')" \
		-acvp "$$(cd /tmp && $(GO) mod download -json $(ACVP) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p')" \
		/usr/lib/softhsm/libsofthsm2.so $(BUILD)/libgohsm.so

# Quick benchmark (under 2 minutes): gohsm, SoftHSMv2 and raw Go, threads 1-2.
bench: deps build
	$(GO) run ./bench/cmd/gohsm-bench run -quick -json $(BUILD)/bench-quick.json

# Full benchmark report: both modules interleaved in one run, written to
# docs/benchmarks.md with the ratio table against the targets and plots.
bench-report: deps build
	$(GO) run ./bench/cmd/gohsm-bench run -full -json $(BUILD)/benchmarks.json -md docs/benchmarks.md \
		-commands "make build; make bench-report"

# HashML-DSA vectors from an independent implementation (Go 1.27
# crypto/mldsa); the Go 1.27 toolchain comes from the module proxy. The file
# is committed, so make test needs neither.
hashmldsa-vectors:
	cd tests/vectors/hashmldsa && GOTOOLCHAIN=go1.27.3 $(GO) run . > ../../../conformance/testdata/hashmldsa_go127.json

# The module from a C host (no second Go runtime in the process) against the
# raw Go libraries, in one run.
bench-chost: deps build
	@scripts/bench-chost.sh 3 5 | tee docs/bench-chost.md

# The network comparison of issue 11 (not in make test; about 7 minutes):
# through the C ABI, libgohsm.so local, in remote mode against gohsm serve on
# loopback, and SoftHSMv2 and gohsm behind p11-kit's server, 1/8/32
# sessions, interleaved; a C application on local and remote; then the Go
# client's own benchmarks. Writes docs/bench-remote.md and the "Measured"
# section of docs/appliance.md; profiles both sides with perf when it is
# installed (linux-perf).
bench-remote: deps build
	$(GO) build -o $(BUILD)/gohsm-bench-remote ./bench/cmd/gohsm-bench-remote
	gcc -O2 -Wall -Ibench -o $(BUILD)/chost bench/chost/csrc/chost.c bench/kem.c -ldl -lpthread
	$(BUILD)/gohsm-bench-remote -root $(CURDIR) -go $(GO) -chost $(BUILD)/chost -json $(BUILD)/bench-remote.json \
		-md docs/bench-remote.md -appliance-doc docs/appliance.md -commands "make build; make bench-remote"

# A fresh `gohsm fixture up` to a signed message, against SoftHSMv2's
# softhsm2-util --init-token + pkcs11-tool keygen + sign, the routes
# alternated in one run, median and range of 11: the table in docs/fixture.md.
bench-fixture: deps build
	$(BUILD)/gohsm fixture bench -n 11 -md docs/fixture.md -commands "make build; make bench-fixture"

# The crypto gateway against OpenBao Transit (issue 12; not in make test,
# about 2 minutes per server): one fasthttp load generator speaking the
# Transit API, encrypt 64 B and ECDSA P-256 sign at batch 1 and 100, 32
# connections, three rounds of 3 s per cell, server CPU from /proc, p99 at
# half the peak rate. Starts `gohsm serve --dev --http`, and the gateway in
# front of an appliance (gohsm-remote-sync-none: two processes);
# OPENBAO=/path/to/bao adds `bao server -dev` with a transit mount
# (scripts/build-openbao.sh builds one from source). With linux-perf installed, one more window per cell
# profiles gohsm's server (where its CPU goes). Writes docs/bench-gateway.md.
bench-gateway: deps build
	$(GO) build -o $(BUILD)/gohsm-bench-gateway ./bench/cmd/gohsm-bench-gateway
	$(BUILD)/gohsm-bench-gateway -gohsm $(BUILD)/gohsm -gohsm-remote none $(if $(OPENBAO),-openbao $(OPENBAO)) -repeats 3 -duration 3s \
		-md docs/bench-gateway.md -json $(BUILD)/bench-gateway.json -perf $(BUILD)/bench-gateway-perf \
		-commands "make build; make bench-gateway$(if $(OPENBAO), OPENBAO=$(OPENBAO))"

# The long crash-safety run: 200 kill -9 of a writing process (make test
# runs 40).
torture:
	GOHSM_TORTURE_KILLS=200 $(GO) test -count=1 -run 'TestTorture$$' -v ./tokens

# High availability (docs/cluster.md): GOHSM_CLUSTER_SCHEDULES schedules
# (default 20) of three `gohsm serve --dev --raft` processes under client
# load, each with a SIGKILL of the leader, a SIGSTOP/SIGCONT of another
# member (the new leader in half of them) and a restart of the killed one,
# every history checked for linearizability with porcupine (make test runs
# one schedule). About 10 s per schedule.
GOHSM_CLUSTER_SCHEDULES ?= 20
cluster-torture:
	GOHSM_CLUSTER_SCHEDULES=$(GOHSM_CLUSTER_SCHEDULES) $(GO) test -count=1 -timeout 30m -run 'TestClusterLinearizable$$' -v ./cmd/gohsm

# The real-client suite, crypto11's and miekg's Go suites and the
# conformance suite through libgohsm.so pointed at a three-member cluster
# for every fresh store (tests/clients/lib.sh cluster mode; conformance
# -members 3). About 5 minutes.
cluster-clients: deps build
	@REMOTE=1 CLUSTER=1 RESULTS_OUT=$(CURDIR)/$(BUILD)/test-results/clients-cluster.txt tests/clients/run.sh $(CURDIR)/$(BUILD)/libgohsm.so
	@REMOTE=1 CLUSTER=1 RESULTS_OUT=$(CURDIR)/$(BUILD)/test-results/gosuites-cluster.txt tests/gosuites/run.sh $(CURDIR)/$(BUILD)/libgohsm.so
	GOHSM_CONFORMANCE_MODULE=$(CURDIR)/$(BUILD)/libgohsm.so GOHSM_CONFORMANCE_APPLIANCE=$(CURDIR)/$(BUILD)/gohsm GOHSM_CONFORMANCE_MEMBERS=3 \
		GOHSM_CONFORMANCE_RESULTS=$(CURDIR)/$(BUILD)/test-results/conformance-cluster.json $(GO) test -count=1 -run '^TestConformance$$' ./conformance

# Object-create and sign rates with no cluster, 1 and 3 members; failover
# times over 20 leader kills; signing from 32 sessions through a leader kill
# (docs/cluster.md, "Measured"). About 2 minutes.
cluster-bench:
	GOHSM_CLUSTER_BENCH=1 $(GO) test -count=1 -timeout 30m -run 'TestClusterBench$$|TestClusterFailoverTimes$$|TestClusterFailoverSigning$$' -v ./cmd/gohsm

# Coverage-guided fuzzing of every parser of caller or disk input; their seed
# corpora already run in make test. FUZZTIME per target.
FUZZTIME ?= 60s
FUZZ := ./hsm/attr:FuzzDecodeTemplate ./hsm/mech:FuzzKeyParse ./hsm/mech:FuzzPKCS8 ./hsm/mech:FuzzMechanismParams \
	./internal/conf:FuzzParse ./tokens:FuzzDecodeAttrs \
	./firmware-sim/wire:FuzzFrame ./firmware-sim/wire:FuzzHandshake ./firmware-sim/wire:FuzzValue \
	./firmware-sim/wire:FuzzParam ./firmware-sim/wire:FuzzCallArgs ./firmware-sim/wire:FuzzResult \
	./firmware-sim/audit:FuzzParseRecord ./firmware-sim/faults:FuzzParse \
	./firmware-sim/cluster:FuzzDecodeEntry ./firmware-sim/cluster:FuzzDecodeSnapshot ./firmware-sim/device/shamir:FuzzCombine
# The crypto gateway: the whole gate (every route's decoder), a few decoders alone, the audit verifier and redaction, policies.
FUZZ += ./gateway/server:FuzzGate ./gateway/server:FuzzEncryptBody ./gateway/server:FuzzSignBody \
	./gateway/server:FuzzTokenCreateBody ./gateway/audit:FuzzVerify ./gateway/audit:FuzzRedactDifferential ./gateway/policy:FuzzParse
# The gateway's records on tokens (any holder of the user PIN can write data objects there).
FUZZ += ./gateway/kv:FuzzDecode
fuzz:
	@for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$fn ($$pkg)"; \
		$(GO) test -run XXX -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

test: deps build vet test-go test-race test-clients test-gosuites test-fixture test-remote

install: build
	install -D -m 0755 $(BUILD)/libgohsm.so $(DESTDIR)/usr/local/lib/gohsm/libgohsm.so
	install -D -m 0644 pkcs11shim/gohsm.module $(DESTDIR)/usr/share/p11-kit/modules/gohsm.module

clean:
	rm -rf $(BUILD)

# Issue 15 (docs/rsaz.md): RSA's private-key operation on AVX-512 IFMA
# (hsm/mech/rsaz). rsaz-test is the package's tests and the mechanism's RSA
# tests on both paths (IFMA, and crypto/rsa with GOHSM_RSAZ=off); the
# conformance vectors run through the C ABI with rsaz-vectors.
.PHONY: rsaz-test rsaz-vectors rsaz-diff rsaz-dudect rsaz-bench
rsaz-test:
	$(GO) test -count=1 ./hsm/mech/rsaz/
	$(GO) test -count=1 -run RSA ./hsm/mech/
	GOHSM_RSAZ=off $(GO) test -count=1 ./hsm/mech/rsaz/
	GOHSM_RSAZ=off $(GO) test -count=1 -run RSA ./hsm/mech/

RSAZ_WYCHEPROOF = $(shell $(GO) env GOMODCACHE)/github.com/!c2!s!p/wycheproof@v0.0.0-20250901140545-b51abcfb8daf
rsaz-vectors: build
	$(GO) run ./cmd/gohsm conformance -doc '' -filter vectors.rsa -wycheproof '$(RSAZ_WYCHEPROOF)' -out $(BUILD)/rsaz/conf-ifma $(BUILD)/libgohsm.so
	GOHSM_RSAZ=off $(GO) run ./cmd/gohsm conformance -doc '' -filter vectors.rsa -wycheproof '$(RSAZ_WYCHEPROOF)' -out $(BUILD)/rsaz/conf-off $(BUILD)/libgohsm.so

# The long differential run: RSAZ_DIFF (default 10^6) random (modulus,
# base, exponent) triples per size against math/big, one size a subtest
# (RSAZ_DIFF_SIZES, default all three). Hours on two cores for 10^6.
RSAZ_DIFF ?= 1000000
RSAZ_DIFF_SIZES ?= 1024|1536|2048
RSAZ_DIFF_OUT ?= $(BUILD)/rsaz-diff.txt
rsaz-diff:
	@mkdir -p $(BUILD)
	GOHSM_RSAZ_DIFF=$(RSAZ_DIFF) $(GO) test -count=1 -timeout 0 -v -run 'TestDifferential$$/^($(RSAZ_DIFF_SIZES))$$' ./hsm/mech/rsaz/ | tee $(RSAZ_DIFF_OUT)

# The dudect-style timing test: RSAZ_DUDECT (default 10^6) measurements per
# case, Welch's t on fixed against random inputs; fails at |t| >= 4.5.
# RSAZ_DUDECT_CASES picks cases (exp, exp-zero, private), RSAZ_DUDECT_OUT
# the log, so that cases can run as separate processes.
RSAZ_DUDECT ?= 1000000
RSAZ_DUDECT_CASES ?= exp|exp-zero|private
RSAZ_DUDECT_OUT ?= $(BUILD)/rsaz-dudect.txt
rsaz-dudect:
	@mkdir -p $(BUILD)
	GOHSM_RSAZ_DUDECT=$(RSAZ_DUDECT) $(GO) test -count=1 -timeout 0 -v -run 'TestDudect$$/^($(RSAZ_DUDECT_CASES))$$' ./hsm/mech/rsaz/ | tee $(RSAZ_DUDECT_OUT)

# RSA through the C ABI against SoftHSMv2, IFMA on and off (GOHSM_RSAZ=off),
# with openssl speed rsa2048 (IFMA, and IFMA masked) before and after, in one
# run; the module is built to build/rsaz so a concurrent make build does not
# swap it mid-run. Tables in build/rsaz/, copied into docs/rsaz.md by hand.
RSAZ_OPS = rsa2048-pkcs1-sign,rsa2048-pss-sign,rsa3072-pkcs1-sign,rsa4096-pkcs1-sign,rsa2048-oaep-dec,rsa2048-x509-dec
RSAZ_BENCH = $(GO) run ./bench/cmd/gohsm-bench run -q -module gohsm=$(BUILD)/rsaz/libgohsm.so \
	-module softhsm2=/usr/lib/softhsm/libsofthsm2.so -op $(RSAZ_OPS) -threads 1,2 -duration 2s -repeats 3
# openssl speed counts CPU time unless -elapsed; the bench counts wall time,
# so on a shared machine only the -elapsed figures compare like with like.
RSAZ_SPEED = { for el in "" -elapsed; do echo "openssl speed $$el rsa2048 (IFMA):"; openssl speed $$el -seconds 10 rsa2048 2>/dev/null | tail -1; \
	echo "openssl speed $$el rsa2048 (IFMA masked, OPENSSL_ia32cap=:~0x200000):"; \
	OPENSSL_ia32cap=":~0x200000" openssl speed $$el -seconds 10 rsa2048 2>/dev/null | tail -1; done; }
rsaz-bench: deps
	@mkdir -p $(BUILD)/rsaz
	$(GO) build -buildmode=c-shared -trimpath -o $(BUILD)/rsaz/libgohsm.so ./pkcs11shim && rm -f $(BUILD)/rsaz/libgohsm.h
	$(RSAZ_SPEED) > $(BUILD)/rsaz/openssl-before.txt
	$(RSAZ_BENCH) -json $(BUILD)/rsaz/bench-ifma.json -md $(BUILD)/rsaz/bench-ifma.md -commands "make rsaz-bench"
	GOHSM_RSAZ=off $(RSAZ_BENCH) -json $(BUILD)/rsaz/bench-off.json -md $(BUILD)/rsaz/bench-off.md -commands "make rsaz-bench (GOHSM_RSAZ=off)"
	$(RSAZ_SPEED) > $(BUILD)/rsaz/openssl-after.txt
	$(GO) test -run '^$$' -bench Private -benchtime 3s ./hsm/mech/rsaz/ > $(BUILD)/rsaz/gobench.txt
	@cat $(BUILD)/rsaz/openssl-before.txt $(BUILD)/rsaz/openssl-after.txt $(BUILD)/rsaz/gobench.txt
