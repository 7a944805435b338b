package faults

import (
	"bytes"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/firmware-sim/faults/internal/genwrap"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The plan's function names are hsm.Backend's methods, read by reflection:
// every method but the non-C helpers is C_ + its name, the class table and
// the generated fn constants agree with the interface, and zwrap.go is what
// genwrap makes of it today.
func TestFunctionsFromInterface(t *testing.T) {
	bt := reflect.TypeFor[hsm.Backend]()
	var want []string
	for i := 0; i < bt.NumMethod(); i++ {
		if n := bt.Method(i).Name; n != "MessageSignMechanism" {
			want = append(want, "C_"+n)
		}
	}
	if got := Functions(); !slices.Equal(got, want) {
		t.Fatalf("Functions() = %v\nwant %v", got, want)
	}
	for _, n := range []string{"C_Sign", "C_Encrypt", "C_Initialize", "C_WaitForSlotEvent", "C_EncapsulateKey", "C_LoginUser"} {
		if !slices.Contains(Functions(), n) {
			t.Errorf("%s missing", n)
		}
	}
	if slices.Contains(Functions(), "C_MessageSignMechanism") || slices.Contains(Functions(), "C_GetFunctionList") {
		t.Error("a function no plan can fault is listed")
	}
	for _, n := range notCFunctions {
		if _, ok := bt.MethodByName(n); !ok {
			t.Errorf("notCFunctions names %s, which hsm.Backend no longer has", n)
		}
	}
	for n := range classes {
		if _, ok := bt.MethodByName(n); !ok {
			t.Errorf("classes names %s, which hsm.Backend does not have", n)
		}
	}
	if int(numFn) != bt.NumMethod() {
		t.Fatalf("zwrap.go has %d fn constants, hsm.Backend %d methods: go generate ./firmware-sim/faults", numFn, bt.NumMethod())
	}
	for f := fn(0); f < numFn; f++ {
		if got := functionName(f); got != "C_"+bt.Method(int(f)).Name {
			t.Fatalf("fn %d is %s, want C_%s", f, got, bt.Method(int(f)).Name)
		}
	}
	if functionName(fnSign) != "C_Sign" || functionName(fnWaitForSlotEvent) != "C_WaitForSlotEvent" {
		t.Fatal("fn constants out of order")
	}
	manual, err := genwrap.HandWritten(".")
	if err != nil {
		t.Fatal(err)
	}
	gen, err := genwrap.Generate(manual)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile(genwrap.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gen, have) {
		t.Fatal("zwrap.go is stale: go generate ./firmware-sim/faults")
	}
	// The class table's operations are the engine's: every C_*Init that
	// takes a mechanism begins one.
	for f := fn(0); f < numFn; f++ {
		name := backendMethods()[f]
		c := fnInfo(f)
		if strings.HasSuffix(name, "Init") && c.hasMech && !c.init {
			t.Errorf("%s takes a mechanism and ends in Init but begins no operation in the class table", name)
		}
	}
}

// The issue's own example, which outside tests rely on, parses to exactly
// what it says.
func TestParseIssueExample(t *testing.T) {
	p, err := Parse([]byte(`{"seed": 7, "rules": [{"function": "C_Sign", "nth": 3, "rv": "CKR_DEVICE_ERROR"}, {"function": "C_Encrypt", "probability": 0.1, "rv": "CKR_DEVICE_MEMORY"}, {"function": "C_Sign", "latency_ms": 5}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Seed != 7 || len(p.Rules) != 3 || len(p.Events) != 0 {
		t.Fatalf("%+v", p)
	}
	r0, r1, r2 := p.Rules[0], p.Rules[1], p.Rules[2]
	if !slices.Equal(r0.Functions, []fn{fnSign}) || r0.Nth != 3 || r0.Count != 1 || r0.RV != ck.CKR_DEVICE_ERROR || r0.Probability != -1 || r0.Latency != nil {
		t.Errorf("rule 0: %+v", r0)
	}
	if !slices.Equal(r1.Functions, []fn{fnEncrypt}) || r1.Nth != 0 || r1.Probability != 0.1 || r1.RV != ck.CKR_DEVICE_MEMORY {
		t.Errorf("rule 1: %+v", r1)
	}
	if !slices.Equal(r2.Functions, []fn{fnSign}) || r2.RV != 0 || r2.Latency == nil || r2.Latency.Kind != DistFixed || r2.Latency.MS != 5 {
		t.Errorf("rule 2: %+v", r2)
	}
	// The other forms: rv by number, events in rules or events, the lag,
	// profiles, mechanisms by name and number, lists.
	p, err = Parse([]byte(`{
		"key_sync_lag_ms": 250,
		"profile": ["cloudhsm"],
		"comment": "everything",
		"rules": [
			{"function": ["C_SignInit", "C_VerifyInit"], "mechanism": ["CKM_ECDSA", "0x1044"], "rv": 48, "comment": "x"},
			{"mechanism": "CKM_AES_KEY_GEN", "rv": "0x31", "nth": 2, "count": 0},
			{"latency": {"dist": "lognormal", "median_ms": 4, "p99_ms": 9}},
			{"event": "remove_token", "slot": 0, "after_calls": 100, "for_ms": 500}
		],
		"events": [{"event": "remove_token", "token": "t1", "after_ms": 10}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.KeySyncLagMS != 250 || len(p.Events) != 2 || !slices.Equal(p.Profiles, []string{"cloudhsm"}) {
		t.Fatalf("%+v", p)
	}
	if r := p.Rules[0]; r.RV != ck.CKR_DEVICE_ERROR || !slices.Equal(r.Mechanisms, []ck.MechanismType{ck.CKM_ECDSA, ck.CKM_ECDSA_SHA256}) {
		t.Errorf("%+v", r)
	}
	if r := p.Rules[1]; r.RV != ck.CKR_DEVICE_MEMORY || r.Nth != 2 || r.Count != 0 || len(r.Functions) != 0 {
		t.Errorf("%+v", r)
	}
	if e := p.Events[0]; !e.HasSlot || e.Slot != 0 || e.AfterCalls != 100 || e.ForMS != 500 || e.ByTime {
		t.Errorf("%+v", e)
	}
	if e := p.Events[1]; e.Token != "t1" || !e.ByTime || e.AfterMS != 10 || e.ForMS != -1 {
		t.Errorf("%+v", e)
	}
	if len(p.Rules) != 3+len(profiles[0].specs) || p.Rules[3].Source != "profile cloudhsm" {
		t.Errorf("profile rules: %d", len(p.Rules))
	}
	// The canonical form parses to itself.
	q, err := Parse(p.JSON())
	if err != nil {
		t.Fatalf("%v\n%s", err, p.JSON())
	}
	if !bytes.Equal(q.JSON(), p.JSON()) {
		t.Fatalf("round trip:\n%s\n%s", p.JSON(), q.JSON())
	}
}

// Every mistake is an error that says what and where.
func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ plan, want string }{
		{`{"rules": [{"function": "C_Sgn", "rv": "CKR_DEVICE_ERROR"}]}`, `rules[0]: function: unknown function "C_Sgn"`},
		{`{"rules": [{"function": "c_sign", "rv": "CKR_DEVICE_ERROR"}]}`, `did you mean C_Sign?`},
		{`{"rules": [{"function": "C_GetFunctionList", "rv": "CKR_DEVICE_ERROR"}]}`, `unknown function "C_GetFunctionList"`},
		{`{"rules": [{"function": "C_MessageSignMechanism", "rv": "CKR_DEVICE_ERROR"}]}`, `unknown function`},
		{`{"rules": [{"function": "C_Sign", "rv": "CKR_DEVICE_EROR"}]}`, `rules[0]: rv: unknown return code "CKR_DEVICE_EROR"`},
		{`{"rules": [{"function": "C_Sign", "rv": "device_error"}]}`, `did you mean CKR_DEVICE_ERROR?`},
		{`{"rules": [{"function": "C_Sign", "rv": true}]}`, `rv: want a CKR_ name or a number`},
		{`{"rules": [{"function": "C_Sign", "rv": 4294967296}]}`, `32 bits`},
		{`{"rules": [{"function": "C_Sign", "probability": 1.5, "rv": "CKR_DEVICE_ERROR"}]}`, `rules[0]: probability 1.5: want a number in [0, 1]`},
		{`{"rules": [{"function": "C_Sign", "probability": -0.1, "rv": "CKR_DEVICE_ERROR"}]}`, `probability -0.1: want a number in [0, 1]`},
		{`{"rules": [{"function": "C_Sign", "nth": 0, "rv": "CKR_DEVICE_ERROR"}]}`, `nth: counts from 1`},
		{`{"rules": [{"function": "C_Sign", "nth": -1, "rv": "CKR_DEVICE_ERROR"}]}`, `nth: want uint64`},
		{`{"rules": [{"function": "C_Sign", "count": 2, "rv": "CKR_DEVICE_ERROR"}]}`, `count: only with nth`},
		{`{"rules": [{"function": "C_Sign", "rv": "CKR_OK"}]}`, `CKR_OK is not a fault`},
		{`{"rules": [{"function": "C_Sign", "rv": "CKR_BUFFER_TOO_SMALL"}]}`, `CKR_BUFFER_TOO_SMALL cannot be injected`},
		{`{"rules": [{"function": "C_Sign"}]}`, `rules[0]: the rule does nothing`},
		{`{"rules": [{"function": "C_Sign", "rv": "CKR_DEVICE_ERROR", "nht": 3}]}`, `rules[0]: unknown key "nht"`},
		{`{"rulez": []}`, `unknown key "rulez"`},
		{`{"seed": -1}`, `seed: want uint64`},
		{`{"rules": [{"function": "C_Sign", "latency_ms": 5, "latency": {"dist": "fixed", "ms": 1}}]}`, `latency_ms and latency: give one`},
		{`{"rules": [{"function": "C_Sign", "latency_ms": -5}]}`, `latency_ms -5: want milliseconds`},
		{`{"rules": [{"function": "C_Sign", "latency_ms": 1e9}]}`, `latency_ms 1e+09: want milliseconds`},
		{`{"rules": [{"function": "C_Sign", "latency": {"dist": "gamma", "ms": 1}}]}`, `dist "gamma"`},
		{`{"rules": [{"function": "C_Sign", "latency": {"dist": "normal", "mean_ms": 1}}]}`, `normal needs stddev_ms`},
		{`{"rules": [{"function": "C_Sign", "latency": {"dist": "uniform", "min_ms": 5, "max_ms": 1}}]}`, `max_ms is below min_ms`},
		{`{"rules": [{"function": "C_Sign", "latency": {"dist": "lognormal", "median_ms": 5}}]}`, `lognormal needs sigma or p99_ms`},
		{`{"rules": [{"function": "C_Sign", "latency": {"dist": "fixed", "ms": 1, "sigma": 1}}]}`, `sigma is not a parameter of fixed`},
		{`{"rules": [{"function": "C_GetInfo", "mechanism": "CKM_ECDSA", "rv": "CKR_DEVICE_ERROR"}]}`, `C_GetInfo has no mechanism`},
		{`{"rules": [{"function": "C_SignInit", "mechanism": "CKM_ECDSB", "rv": "CKR_DEVICE_ERROR"}]}`, `unknown mechanism "CKM_ECDSB"`},
		{`{"rules": [{"function": [], "rv": "CKR_DEVICE_ERROR"}]}`, `function: want a name or a non-empty list`},
		{`{"profile": "hsm9000"}`, `profile "hsm9000": unknown`},
		{`{"events": [{"event": "remove_token", "after_calls": 1}]}`, `events[0]: which token?`},
		{`{"events": [{"event": "remove_token", "slot": 0, "token": "x", "after_calls": 1}]}`, `slot and token`},
		{`{"events": [{"event": "explode", "slot": 0, "after_calls": 1}]}`, `event "explode": unknown`},
		{`{"events": [{"event": "remove_token", "slot": 0}]}`, `when?`},
		{`{"events": [{"event": "remove_token", "slot": 0, "after_calls": 1, "after_ms": 2}]}`, `after_calls and after_ms`},
		{`{"rules": [{"event": "remove_token", "slot": 0, "after_calls": 1, "for_ms": -1}]}`, `rules[0]: for_ms -1`},
		{`{"key_sync_lag_ms": -1}`, `key_sync_lag_ms -1`},
		{`{} {}`, `text after the JSON value`},
		{`[1]`, `cannot unmarshal`},
		{`{"rules": [{"function": "C_Sign", "rv": "CKR_DEVICE_ERROR"}`, `unexpected EOF`},
	} {
		_, err := Parse([]byte(c.plan))
		if err == nil {
			t.Errorf("%s: no error", c.plan)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %q\nwant it to contain %q", c.plan, err, c.want)
		}
	}
	if _, err := Parse(bytes.Repeat([]byte(" "), maxPlan+1)); err == nil {
		t.Error("an oversized plan parsed")
	}
}

// Every profile resolves, cites its sources, and its distributions sit on
// the published figures.
func TestProfiles(t *testing.T) {
	if len(profiles) < 3 {
		t.Fatal("want a network HSM, a cloud HSM and a USB token")
	}
	for _, name := range []string{"cloudhsm", "cloud", "luna", "network", "yubikey", "usb", "CloudHSM"} {
		p, ok := ProfileByName(name)
		if !ok {
			t.Fatalf("%s: not found", name)
		}
		if len(p.Sources) == 0 || p.Device == "" || len(p.rules()) == 0 {
			t.Errorf("%s: no sources, device or rules", p.Name)
		}
		plan, err := Parse([]byte(`{"profile": "` + name + `"}`))
		if err != nil || len(plan.Rules) != len(p.specs) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Published figures, against the distributions' own statistics.
	mean := func(d Dist) float64 { return d.MeanMS() }
	within := func(name string, got, want, tol float64) {
		t.Helper()
		if got < want*(1-tol) || got > want*(1+tol) {
			t.Errorf("%s: %.2f ms, want %.2f ± %.0f%%", name, got, want, tol*100)
		}
	}
	cloud, _ := ProfileByName("cloudhsm")
	within("cloudhsm median", cloud.specs[0].dist.Median, 8, 0.01)
	within("cloudhsm p99 (measured max 20)", cloud.specs[0].dist.Median*math.Exp(z99*cloud.specs[0].dist.Sigma), 20, 0.02)
	luna, _ := ProfileByName("luna")
	within("luna mean (measured 12)", mean(luna.specs[0].dist), 12, 0.05)
	within("luna p99 (measured max 21)", luna.specs[0].dist.Median*math.Exp(z99*luna.specs[0].dist.Sigma), 21, 0.02)
	yk, _ := ProfileByName("yubikey")
	within("yubikey RSA-2048 sign", mean(yk.specs[0].dist), 138.5, 0.001)
	within("yubikey P-256 sign", mean(yk.specs[2].dist), 71.6, 0.001)
	within("yubikey PIN", mean(yk.specs[3].dist), 9.1, 0.001)
	// Samples follow the distributions: a median of many draws.
	d := cloud.specs[0].dist
	var xs []float64
	for n := uint64(1); n <= 4001; n++ {
		xs = append(xs, float64(d.sample(uniform(1, 0, n), uniform(1, 1, n)).Microseconds())/1000)
	}
	slices.Sort(xs)
	within("cloudhsm sampled median", xs[len(xs)/2], 8, 0.05)
	within("cloudhsm sampled p99", xs[len(xs)*99/100], 20, 0.10)
}

// FuzzParse: no input panics the parser, and a plan that parses comes back
// the same from its canonical form and can be run.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"seed": 7, "rules": [{"function": "C_Sign", "nth": 3, "rv": "CKR_DEVICE_ERROR"}, {"function": "C_Encrypt", "probability": 0.1, "rv": "CKR_DEVICE_MEMORY"}, {"function": "C_Sign", "latency_ms": 5}]}`,
		`{"rules": [{"event": "remove_token", "slot": 0, "after_calls": 100, "for_ms": 500}], "key_sync_lag_ms": 100}`,
		`{"profile": "yubikey", "rules": [{"mechanism": ["CKM_ECDSA", "0x1041"], "rv": 48, "nth": 2, "count": 0}]}`,
		`{"rules": [{"latency": {"dist": "normal", "mean_ms": 3, "stddev_ms": 1, "min_ms": 1, "max_ms": 9}}, {"function": "C_Login", "latency": {"dist": "uniform", "min_ms": 1, "max_ms": 2}, "probability": 0.5}]}`,
		`{"events": [{"event": "remove_token", "token": "tok", "after_ms": 5}]}`,
		`{"rules": [{"function": "C_SignInit", "mechanism": "CKM_SM2_SIGN_RAW", "rv": "0x30"}]}`,
		`{}`, `[]`, `null`, `{"rules": null}`, `{"rules": [null]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		q, err := Parse(p.JSON())
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, p.JSON())
		}
		if !bytes.Equal(q.JSON(), p.JSON()) {
			t.Fatalf("canonical form changes:\n%s\n%s", p.JSON(), q.JSON())
		}
		for _, r := range p.Rules {
			if r.Probability > 1 || (r.Probability < 0 && r.Probability != -1) || (r.RV == 0 && r.Latency == nil) {
				t.Fatalf("bad rule accepted: %+v", r)
			}
		}
		inj := New(p)
		inj.SetPlan(nil) // stops its timers
	})
}
