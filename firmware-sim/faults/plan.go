package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/gohsm/gohsm/hsm/ck"
)

// A Plan is a parsed fault plan (docs/firmware.md, "Faults and latency"):
// rules that fail or delay calls, token removal events, the key-sync lag
// and the seed that makes every random choice reproducible. Parse makes
// one from JSON; the zero Plan injects nothing.
type Plan struct {
	Seed uint64
	// Profiles are the named latency profiles the plan selected, in order;
	// their rules follow the plan's own in Rules.
	Profiles []string
	Rules    []Rule
	Events   []Event
	// KeySyncLagMS hides a new token object from C_FindObjects in every
	// session but the one that made it for this long (milliseconds).
	KeySyncLagMS float64
}

// A Rule matches calls (by function and mechanism), picks some of them
// (nth/count, probability: both when both are given, every match when
// neither is), and delays and/or fails the picked ones.
type Rule struct {
	// Functions are fn indexes (backendMethods); empty matches every
	// function (with Mechanisms: every function with a mechanism argument).
	Functions []fn
	// Mechanisms: the call's mechanism argument (C_SignInit, C_GenerateKey,
	// ...) or, for an operation's calls (C_Sign, C_EncryptUpdate, ...), the
	// mechanism its C_*Init was given. Empty matches any.
	Mechanisms []ck.MechanismType
	// Nth picks the Nth matching call (from 1) and the Count-1 after it
	// (Count 0: every call from the Nth on). 0: no position condition.
	Nth, Count uint64
	// Probability picks each matching call with this chance (seeded); -1
	// means no probability condition.
	Probability float64
	// RV, when not 0 (CKR_OK), is the error the picked calls return
	// without reaching the backend.
	RV ck.RV
	// Latency, when not nil, delays the picked calls.
	Latency *Dist
	// Source is where the rule came from: "rules[3]" or "profile cloudhsm".
	Source string
	// Comment is the plan's free text for the rule.
	Comment string
}

// An Event changes the device at a moment: today only token removal.
type Event struct {
	Kind string // "remove_token"
	// The slot, by ID or by token label (exactly one: Token != "" or
	// HasSlot).
	Slot    ck.SlotID
	HasSlot bool
	Token   string
	// When: after this many calls through the plan's injector (all
	// functions), or this long after the plan was applied.
	AfterCalls uint64
	AfterMS    float64
	ByTime     bool
	// ForMS is how long the token stays out; -1: until the plan changes.
	ForMS   float64
	Source  string
	Comment string
}

// LoadFile reads and parses a plan file.
func LoadFile(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fault plan: %w", err)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("fault plan %s: %w", path, err)
	}
	return p, nil
}

// The JSON forms. Unknown keys are errors (a typo must not silently turn a
// rule off).
type jsonPlan struct {
	Seed         *uint64           `json:"seed"`
	Profile      json.RawMessage   `json:"profile"`
	KeySyncLagMS *float64          `json:"key_sync_lag_ms"`
	Rules        []json.RawMessage `json:"rules"`
	Events       []json.RawMessage `json:"events"`
	Comment      string            `json:"comment"`
}

type jsonRule struct {
	Function    json.RawMessage `json:"function"`
	Mechanism   json.RawMessage `json:"mechanism"`
	Nth         *uint64         `json:"nth"`
	Count       *uint64         `json:"count"`
	Probability *float64        `json:"probability"`
	RV          json.RawMessage `json:"rv"`
	LatencyMS   *float64        `json:"latency_ms"`
	Latency     *jsonDist       `json:"latency"`
	Comment     string          `json:"comment"`
}

type jsonEvent struct {
	Event      string   `json:"event"`
	Slot       *uint64  `json:"slot"`
	Token      *string  `json:"token"`
	AfterCalls *uint64  `json:"after_calls"`
	AfterMS    *float64 `json:"after_ms"`
	ForMS      *float64 `json:"for_ms"`
	Comment    string   `json:"comment"`
}

// maxMS bounds every duration in a plan: an hour.
const maxMS = 3600 * 1000

// maxPlan bounds a plan's size (bytes); a plan is a handful of rules.
const maxPlan = 1 << 20

// Parse reads a plan (docs/firmware.md, "Faults and latency"). Errors name
// the rule and the key.
func Parse(data []byte) (*Plan, error) {
	if len(data) > maxPlan {
		return nil, fmt.Errorf("plan is %d bytes, more than %d", len(data), maxPlan)
	}
	var jp jsonPlan
	if err := strictDecode(data, &jp); err != nil {
		return nil, err
	}
	p := &Plan{}
	if jp.Seed != nil {
		p.Seed = *jp.Seed
	}
	if jp.KeySyncLagMS != nil {
		if err := checkMS("key_sync_lag_ms", *jp.KeySyncLagMS); err != nil {
			return nil, err
		}
		p.KeySyncLagMS = *jp.KeySyncLagMS
	}
	for i, raw := range jp.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		// An object with "event" in rules is an event (the issue's own
		// example writes them side by side).
		if isEvent(raw) {
			e, err := parseEvent(raw, where)
			if err != nil {
				return nil, err
			}
			p.Events = append(p.Events, e)
			continue
		}
		r, err := parseRule(raw, where)
		if err != nil {
			return nil, err
		}
		p.Rules = append(p.Rules, r)
	}
	for i, raw := range jp.Events {
		e, err := parseEvent(raw, fmt.Sprintf("events[%d]", i))
		if err != nil {
			return nil, err
		}
		p.Events = append(p.Events, e)
	}
	names, err := stringOrList(jp.Profile)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	for _, n := range names {
		prof, ok := ProfileByName(n)
		if !ok {
			return nil, fmt.Errorf("profile %q: unknown (known: %s)", n, strings.Join(ProfileNames(), ", "))
		}
		p.Profiles = append(p.Profiles, prof.Name)
		p.Rules = append(p.Rules, prof.rules()...)
	}
	return p, nil
}

func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return errors.New("text after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("text after the JSON value")
	}
	return nil
}

// jsonError makes encoding/json's messages about this format.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("%s: want %s, not a JSON %s", te.Field, te.Type, te.Value)
	}
	if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown key %s", s)
	}
	return err
}

func isEvent(raw json.RawMessage) bool {
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) != nil {
		return false
	}
	_, ok := probe["event"]
	return ok
}

func parseRule(raw json.RawMessage, where string) (Rule, error) {
	var jr jsonRule
	if err := strictDecode(raw, &jr); err != nil {
		return Rule{}, fmt.Errorf("%s: %w", where, err)
	}
	r := Rule{Probability: -1, Source: where, Comment: jr.Comment}
	fail := func(format string, args ...any) (Rule, error) {
		return Rule{}, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
	}
	names, err := stringOrList(jr.Function)
	if err != nil {
		return fail("function: %v", err)
	}
	for _, n := range names {
		f, err := lookupFunction(n)
		if err != nil {
			return fail("function: %v", err)
		}
		r.Functions = append(r.Functions, f)
	}
	mechs, err := stringOrList(jr.Mechanism)
	if err != nil {
		return fail("mechanism: %v", err)
	}
	for _, m := range mechs {
		v, err := parseMechanism(m)
		if err != nil {
			return fail("mechanism: %v", err)
		}
		r.Mechanisms = append(r.Mechanisms, v)
	}
	if len(r.Mechanisms) > 0 {
		for _, f := range r.Functions {
			if !fnInfo(f).mechanism() {
				return fail("mechanism: %s has no mechanism (neither an argument nor an operation's): the rule would never match", functionName(f))
			}
		}
	}
	if jr.Nth != nil {
		if *jr.Nth == 0 {
			return fail("nth: counts from 1")
		}
		r.Nth = *jr.Nth
		r.Count = 1
	}
	if jr.Count != nil {
		if jr.Nth == nil {
			return fail("count: only with nth (count calls from the nth on fail; 0 is every call from the nth on)")
		}
		r.Count = *jr.Count
	}
	if jr.Probability != nil {
		p := *jr.Probability
		if math.IsNaN(p) || p < 0 || p > 1 {
			return fail("probability %v: want a number in [0, 1]", p)
		}
		r.Probability = p
	}
	if len(jr.RV) > 0 {
		rv, err := rvValue(jr.RV)
		if err != nil {
			return fail("rv: %v", err)
		}
		switch rv {
		case ck.CKR_OK:
			return fail("rv: CKR_OK is not a fault (leave rv out for a latency-only rule)")
		case ck.CKR_BUFFER_TOO_SMALL:
			return fail("rv: CKR_BUFFER_TOO_SMALL cannot be injected: it must come with the length the caller needs, which only the backend knows")
		}
		r.RV = rv
	}
	switch {
	case jr.LatencyMS != nil && jr.Latency != nil:
		return fail("latency_ms and latency: give one")
	case jr.LatencyMS != nil:
		if err := checkMS("latency_ms", *jr.LatencyMS); err != nil {
			return fail("%v", err)
		}
		r.Latency = &Dist{Kind: DistFixed, MS: *jr.LatencyMS}
	case jr.Latency != nil:
		d, err := jr.Latency.dist()
		if err != nil {
			return fail("latency: %v", err)
		}
		r.Latency = d
	}
	if r.RV == 0 && r.Latency == nil {
		return fail("the rule does nothing: give rv (an error to return) and/or latency_ms or latency")
	}
	return r, nil
}

func parseEvent(raw json.RawMessage, where string) (Event, error) {
	var je jsonEvent
	if err := strictDecode(raw, &je); err != nil {
		return Event{}, fmt.Errorf("%s: %w", where, err)
	}
	fail := func(format string, args ...any) (Event, error) {
		return Event{}, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
	}
	e := Event{Kind: je.Event, ForMS: -1, Source: where, Comment: je.Comment}
	if je.Event != EventRemoveToken {
		return fail("event %q: unknown (known: %s)", je.Event, EventRemoveToken)
	}
	switch {
	case je.Slot != nil && je.Token != nil:
		return fail("slot and token: name the slot one way")
	case je.Slot != nil:
		e.Slot, e.HasSlot = ck.SlotID(*je.Slot), true
	case je.Token != nil:
		if *je.Token == "" || len(*je.Token) > 32 {
			return fail("token: a token label is 1 to 32 bytes")
		}
		e.Token = *je.Token
	default:
		return fail("which token? give slot (a slot ID) or token (a token label)")
	}
	switch {
	case je.AfterCalls != nil && je.AfterMS != nil:
		return fail("after_calls and after_ms: give one")
	case je.AfterCalls != nil:
		e.AfterCalls = *je.AfterCalls
	case je.AfterMS != nil:
		if err := checkMS("after_ms", *je.AfterMS); err != nil {
			return fail("%v", err)
		}
		e.AfterMS, e.ByTime = *je.AfterMS, true
	default:
		return fail("when? give after_calls (calls through the plan) or after_ms (time since the plan was applied)")
	}
	if je.ForMS != nil {
		if err := checkMS("for_ms", *je.ForMS); err != nil {
			return fail("%v", err)
		}
		e.ForMS = *je.ForMS
	}
	return e, nil
}

// EventRemoveToken is the event that pulls a token out of its slot.
const EventRemoveToken = "remove_token"

func checkMS(key string, v float64) error {
	if math.IsNaN(v) || v < 0 || v > maxMS {
		return fmt.Errorf("%s %v: want milliseconds from 0 to %d", key, v, maxMS)
	}
	return nil
}

// stringOrList reads "x" or ["x", "y"] (absent: nothing).
func stringOrList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 {
		return nil, errors.New("want a name or a non-empty list of names")
	}
	return many, nil
}

// rvValue reads "CKR_NAME", "0x30", "48" or 48.
func rvValue(raw json.RawMessage) (ck.RV, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return parseRV(s)
	}
	var n uint64
	if err := json.Unmarshal(raw, &n); err == nil {
		if n > math.MaxUint32 {
			return 0, fmt.Errorf("%d: a CK_RV is 32 bits here", n)
		}
		return ck.RV(n), nil
	}
	return 0, errors.New("want a CKR_ name or a number")
}

// String is the plan in its canonical JSON form (profiles expanded into
// their rules), for logs and for `gohsm faults check`.
func (p *Plan) String() string {
	b, _ := json.MarshalIndent(p.canonical(), "", "  ")
	return string(b)
}

// JSON is the canonical form: Parse(p.JSON()) is the same plan.
func (p *Plan) JSON() []byte {
	b, _ := json.Marshal(p.canonical())
	return b
}

func (p *Plan) canonical() map[string]any {
	out := map[string]any{"seed": p.Seed}
	if p.KeySyncLagMS > 0 {
		out["key_sync_lag_ms"] = p.KeySyncLagMS
	}
	rules := []any{}
	for _, r := range p.Rules {
		m := map[string]any{}
		if len(r.Functions) > 0 {
			var fs []string
			for _, f := range r.Functions {
				fs = append(fs, functionName(f))
			}
			m["function"] = fs
		}
		if len(r.Mechanisms) > 0 {
			var ms []string
			for _, v := range r.Mechanisms {
				if n := v.String(); strings.HasPrefix(n, "CKM_") {
					if back, ok := mechByName()[n]; ok && back == v {
						ms = append(ms, n)
						continue
					}
				}
				ms = append(ms, "0x"+strconv.FormatUint(uint64(v), 16))
			}
			m["mechanism"] = ms
		}
		if r.Nth > 0 {
			m["nth"], m["count"] = r.Nth, r.Count
		}
		if r.Probability >= 0 {
			m["probability"] = r.Probability
		}
		if r.RV != 0 {
			m["rv"] = r.RV.String()
			if strings.HasPrefix(r.RV.String(), "0x") {
				m["rv"] = uint64(r.RV)
			}
		}
		if r.Latency != nil {
			m["latency"] = r.Latency.jsonForm()
		}
		c := r.Comment
		if r.Source != "" && !strings.HasPrefix(r.Source, "rules[") {
			c = strings.TrimSpace(r.Source + ": " + c)
		}
		if c != "" {
			m["comment"] = c
		}
		rules = append(rules, m)
	}
	out["rules"] = rules
	events := []any{}
	for _, e := range p.Events {
		m := map[string]any{"event": e.Kind}
		if e.HasSlot {
			m["slot"] = uint64(e.Slot)
		} else {
			m["token"] = e.Token
		}
		if e.ByTime {
			m["after_ms"] = e.AfterMS
		} else {
			m["after_calls"] = e.AfterCalls
		}
		if e.ForMS >= 0 {
			m["for_ms"] = e.ForMS
		}
		if e.Comment != "" {
			m["comment"] = e.Comment
		}
		events = append(events, m)
	}
	out["events"] = events
	return out
}
