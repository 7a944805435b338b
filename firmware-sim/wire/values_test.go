package wire

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// params is one value of every parameter structure, with nil and empty
// byte strings where they make a difference.
func params() []any {
	return []any{
		nil,
		[]byte{},
		[]byte{1, 2, 3},
		&ck.GCMParams{IV: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, IVBits: 96, AAD: []byte("aad"), TagBits: 128},
		&ck.GCMParams{IV: make([]byte, 12), AAD: nil},
		&ck.CCMParams{DataLen: 100, Nonce: []byte{1, 2, 3, 4, 5, 6, 7}, AAD: []byte{}, MACLen: 16},
		&ck.CTRParams{CounterBits: 32, CB: [16]byte{1, 2, 3, 15: 0xff}},
		&ck.RSAOAEPParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED, SourceData: []byte("label")},
		&ck.RSAPSSParams{HashAlg: ck.CKM_SHA384, MGF: ck.CKG_MGF1_SHA384, SaltLen: 48},
		&ck.ECDH1DeriveParams{KDF: ck.CKD_SHA256_KDF, SharedData: []byte("info"), PublicData: bytes.Repeat([]byte{4}, 65)},
		&ck.EDDSAParams{PHFlag: true, ContextData: []byte("ctx")},
		&ck.EDDSAParams{},
		ck.MACGeneralParams(16),
		&ck.SignAdditionalContext{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("c")},
		&ck.HashSignAdditionalContext{Hedge: ck.CKH_HEDGE_REQUIRED, Context: nil, Hash: ck.CKM_SHA512},
		&ck.ChaCha20Poly1305Params{Nonce: make([]byte, 12), AAD: []byte("a")},
		&ck.HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_KEY, SaltKey: 77, Info: []byte("i")},
		&ck.PBKD2Params{SaltSource: ck.CKZ_SALT_SPECIFIED, Salt: []byte("salt"), Iterations: 1000, PRF: ck.CKP_PKCS5_PBKD2_HMAC_SHA256,
			Password: []byte("password")},
		&ck.GCMMessageParams{IV: make([]byte, 12), IVFixedBits: 32, IVGenerator: ck.CKG_GENERATE_COUNTER, Tag: make([]byte, 16), TagBits: 128},
		&ck.ChaCha20Poly1305MsgParams{Nonce: make([]byte, 12), Tag: make([]byte, 16)},
	}
}

// Every parameter structure survives the round trip exactly.
func TestParamRoundTrip(t *testing.T) {
	seen := map[ParamTag]bool{}
	for _, p := range params() {
		var e Encoder
		EncodeParam(&e, p)
		if e.Err != nil {
			t.Fatalf("%T: %v", p, e.Err)
		}
		seen[ParamTag(e.B[0])] = true
		d := NewDecoder(e.B, 0)
		got := DecodeParam(d)
		if err := d.Done(); err != nil {
			t.Fatalf("%T: %v", p, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("%T: got %#v, want %#v", p, got, p)
		}
	}
	for tag := range paramTagCount {
		if !seen[tag] {
			t.Errorf("parameter %v not covered", tag)
		}
	}
}

// The engine's parameter kinds all have a wire tag, so no mechanism
// parameter is dropped on the way (the p11-kit failure).
func TestEveryParamKindHasATag(t *testing.T) {
	for k := ck.ParamBytes; k <= ck.ParamPBKD2; k++ {
		if _, ok := kindTag[k]; !ok {
			t.Errorf("ck.ParamKind %d has no wire tag", k)
		}
	}
}

// Malformed parameters are refused with CKR_MECHANISM_PARAM_INVALID.
func TestParamValidation(t *testing.T) {
	enc := func(p any) []byte { var e Encoder; EncodeParam(&e, p); return e.B }
	bad := map[string][]byte{
		"unknown tag":       {0x7f},
		"truncated":         enc(&ck.GCMParams{IV: make([]byte, 12)})[:10],
		"bool 2":            append([]byte{byte(ParamEDDSA), 2}, 0, 0, 0, 0),
		"ctr bits":          enc(&ck.CTRParams{CounterBits: 129}),
		"gcm msg tag":       enc(&ck.GCMMessageParams{IV: make([]byte, 12), Tag: make([]byte, 15), TagBits: 128}),
		"gcm msg fixed":     enc(&ck.GCMMessageParams{IV: make([]byte, 4), IVFixedBits: 33, Tag: make([]byte, 16), TagBits: 128}),
		"chacha msg tag":    enc(&ck.ChaCha20Poly1305MsgParams{Nonce: make([]byte, 12), Tag: make([]byte, 8)}),
		"length overrun":    {byte(ParamBytes), 0, 0, 1, 0, 1},
		"absent is ok, not": {byte(ParamBytes), 0xff, 0xff, 0xff, 0xfe},
	}
	for name, b := range bad {
		d := NewDecoder(b, 0)
		DecodeParam(d)
		err := d.Done()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if de, ok := err.(*DecodeError); !ok || de.RV != ck.CKR_MECHANISM_PARAM_INVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A structure that does not belong to the mechanism.
	var e Encoder
	EncodeMechanism(&e, ck.Mechanism{Type: ck.CKM_RSA_PKCS_PSS, Param: &ck.GCMParams{}})
	d := NewDecoder(e.B, 0)
	DecodeMechanism(d)
	if err := d.Done(); err == nil || err.(*DecodeError).RV != ck.CKR_MECHANISM_PARAM_INVALID {
		t.Errorf("GCM parameter for PSS: %v", err)
	}
	// A Go type with no encoding is refused by the encoder.
	e = Encoder{}
	EncodeParam(&e, struct{}{})
	if e.Err == nil {
		t.Error("unencodable parameter accepted")
	}
}

// sample returns a value of Go type t; variant picks among several.
func sample(t reflect.Type, variant int) any {
	switch t {
	case reflect.TypeFor[any]():
		ps := params()
		return ps[variant%len(ps)]
	case reflect.TypeFor[ck.Mechanism]():
		ms := []ck.Mechanism{{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: make([]byte, 12), TagBits: 128}},
			{Type: ck.CKM_ECDSA}, {Type: ck.CKM_AES_CBC, Param: make([]byte, 16)},
			{Type: ck.CKM_HKDF_DERIVE, Param: &ck.HKDFParams{Expand: true, PRF: ck.CKM_SHA256}},
			{Type: ck.CKM_AES_GCM, Param: &ck.GCMMessageParams{}}}
		return ms[variant%len(ms)]
	case reflect.TypeFor[[]byte]():
		return [][]byte{nil, {}, []byte("data")}[variant%3]
	case reflect.TypeFor[string]():
		return fmt.Sprintf("label-%d", variant)
	case reflect.TypeFor[bool]():
		return variant%2 == 1
	case reflect.TypeFor[int]():
		return []int{-1, 0, 64, 4096}[variant%4]
	case reflect.TypeFor[[]ck.Attribute]():
		return [][]ck.Attribute{nil, {}, {{Type: ck.CKA_LABEL, Value: []byte("x")}, {Type: ck.CKA_ID, Value: nil},
			{Type: ck.CKA_VALUE, Value: []byte{}}}}[variant%3]
	case reflect.TypeFor[ck.Attribute]():
		return ck.Attribute{Type: ck.CKA_LABEL, Value: [][]byte{nil, {}, []byte("x")}[variant%3]}
	case reflect.TypeFor[ck.AttributeRequest]():
		return ck.AttributeRequest{Type: ck.CKA_VALUE, Cap: variant - 1}
	case reflect.TypeFor[ck.AttributeResult]():
		return ck.AttributeResult{Type: ck.CKA_VALUE, Len: 3, Value: [][]byte{nil, {}, []byte("xyz")}[variant%3]}
	case reflect.TypeFor[[]ck.AttributeRequest]():
		return []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: -1}, {Type: ck.CKA_LABEL, Cap: 32}}
	case reflect.TypeFor[[]ck.AttributeResult]():
		return []ck.AttributeResult{{Type: ck.CKA_VALUE, Len: ck.ULong(ck.CK_UNAVAILABLE_INFORMATION)},
			{Type: ck.CKA_LABEL, Len: 1, Value: []byte("x")}}
	case reflect.TypeFor[[]ck.SlotID]():
		return []ck.SlotID{0, 1, 7}
	case reflect.TypeFor[[]ck.MechanismType]():
		return []ck.MechanismType{ck.CKM_AES_GCM, ck.CKM_ML_KEM}
	case reflect.TypeFor[[]ck.ObjectHandle]():
		return [][]ck.ObjectHandle{nil, {}, {1, 1 << 41}}[variant%3]
	case reflect.TypeFor[ck.Info]():
		return ck.Info{CryptokiVersion: ck.Version{Major: 3}, ManufacturerID: "gohsm", LibraryDescription: "d", LibraryVersion: ck.Version{Minor: 1}}
	case reflect.TypeFor[ck.SlotInfo]():
		return ck.SlotInfo{SlotDescription: "s", ManufacturerID: "m", Flags: 1, HardwareVersion: ck.Version{Major: 1, Minor: 2}}
	case reflect.TypeFor[ck.TokenInfo]():
		return ck.TokenInfo{Label: "alpha", Model: "m", SerialNumber: "1", Flags: 0x400, MaxSessionCount: ck.CK_EFFECTIVELY_INFINITE,
			SessionCount: 3, MinPinLen: 4, MaxPinLen: 255, FreePrivateMemory: ck.CK_UNAVAILABLE_INFORMATION, UTCTime: "2025"}
	case reflect.TypeFor[ck.SessionInfo]():
		return ck.SessionInfo{SlotID: 1, State: ck.CKS_RW_USER_FUNCTIONS, Flags: 6}
	case reflect.TypeFor[ck.MechanismInfo]():
		return ck.MechanismInfo{MinKeySize: 16, MaxKeySize: 32, Flags: 0x300}
	}
	if t.Kind() == reflect.Uint64 {
		v := reflect.New(t).Elem()
		v.SetUint(uint64(variant)*0x0101010101 + 1)
		return v.Interface()
	}
	panic("no sample for " + t.String())
}

// Every call's arguments and results survive the round trip exactly,
// including parameters written back by the engine.
func TestCallRoundTrip(t *testing.T) {
	for _, c := range Calls() {
		for variant := range 20 {
			args := make([]any, len(c.Args))
			for i, ty := range c.ArgTypes() {
				args[i] = sample(ty, variant+i)
			}
			p, err := c.AppendCall(nil, args)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			dec, err := DecodeCall(p, DefaultMaxFrame)
			if err != nil {
				t.Fatalf("%s %v: %v", c.Name, args, err)
			}
			if dec.Call != c || !reflect.DeepEqual(dec.Args, args) {
				t.Fatalf("%s: args %#v, want %#v", c.Name, dec.Args, args)
			}
			if len(dec.Params) != len(c.InOut) {
				t.Fatalf("%s: %d parameter spans for %d in/out arguments", c.Name, len(dec.Params), len(c.InOut))
			}
			results := make([]any, len(c.Results))
			for i, ty := range c.ResultTypes() {
				results[i] = sample(ty, variant+i)
			}
			// The engine writes into a GCM message parameter: the change
			// travels back; an untouched parameter is marked unchanged.
			changed := false
			for _, i := range c.InOut {
				if g, ok := paramOf(dec.Args[i]).(*ck.GCMMessageParams); ok && len(g.IV) > 0 {
					g.IV[0] ^= 0xff
					changed = true
				}
			}
			rp := c.AppendResult(nil, ck.CKR_BUFFER_TOO_SMALL, results, dec.Args, dec.Params)
			r, err := c.DecodeResult(rp, FlagValues)
			if err != nil {
				t.Fatalf("%s: result: %v", c.Name, err)
			}
			if r.RV != ck.CKR_BUFFER_TOO_SMALL || !reflect.DeepEqual(r.Values, results) {
				t.Fatalf("%s: results %#v, want %#v", c.Name, r.Values, results)
			}
			anyChanged := false
			for j := range r.Changed {
				anyChanged = anyChanged || r.Changed[j]
			}
			if anyChanged != changed {
				t.Fatalf("%s: changed %v, want %v", c.Name, r.Changed, changed)
			}
			// A code-only answer.
			r, err = c.DecodeResult(AppendCode(nil, ck.CKR_DEVICE_MEMORY), FlagNotRun)
			if err != nil || r.RV != ck.CKR_DEVICE_MEMORY || r.Values != nil {
				t.Fatalf("%s: code-only result %v %v", c.Name, r, err)
			}
		}
	}
}

// UpdateParam writes into the caller's structure in place.
func TestUpdateParam(t *testing.T) {
	iv := make([]byte, 12)
	dst := &ck.GCMParams{IV: iv, TagBits: 128}
	src := &ck.GCMParams{IV: bytes.Repeat([]byte{9}, 12), TagBits: 128}
	if !UpdateParam(dst, src) || !bytes.Equal(iv, src.IV) || &dst.IV[0] != &iv[0] {
		t.Fatal("IV not written in place")
	}
	b := make([]byte, 4)
	if !UpdateParam(b, []byte{1, 2, 3, 4}) || b[3] != 4 {
		t.Fatal("bytes not written in place")
	}
	if UpdateParam(ck.MACGeneralParams(1), ck.MACGeneralParams(2)) || UpdateParam(dst, &ck.CCMParams{}) {
		t.Fatal("impossible update reported done")
	}
}

// Lists and strings are bounded by the input before anything is allocated.
func TestDecoderBounds(t *testing.T) {
	// A template claiming 2^32-2 attributes in 8 bytes.
	d := NewDecoder([]byte{0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0}, 0)
	if tTemplate.Decode(d); d.Err() == nil {
		t.Fatal("huge count accepted")
	}
	d = NewDecoder([]byte{0, 0, 0, 0, 0, 0, 0, 200}, 100)
	if d.Int(); d.Err() == nil {
		t.Fatal("int above the limit accepted")
	}
	d = NewDecoder([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, 100)
	if d.Int(); d.Err() == nil {
		t.Fatal("int -2 accepted")
	}
	d = NewDecoder([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 100)
	if v := d.Int(); d.Err() != nil || v != -1 {
		t.Fatal("-1 refused")
	}
}

func TestFrames(t *testing.T) {
	f := AppendFrame(nil, FrameCall, 0, 42, []byte("abc"))
	h, err := ParseHeader(f, 10)
	if err != nil || h.Type != FrameCall || h.ID != 42 || h.Len != 3 {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := ParseHeader(f, 2); err == nil {
		t.Fatal("oversized frame accepted")
	}
	f[6] = 1
	if _, err := ParseHeader(f, 10); err == nil {
		t.Fatal("reserved bits accepted")
	}
	items := [][]byte{AppendFrame(nil, FrameResult, FlagValues, 1, []byte{1}), AppendFrame(nil, FrameResult, 0, 2, nil)}
	size := 4 + len(items[0]) + len(items[1])
	b := AppendBatchHeader(nil, 2, size)
	b = append(append(b, items[0]...), items[1]...)
	h, err = ParseHeader(b, 1<<10)
	if err != nil || h.Type != FrameBatch || h.Len != size {
		t.Fatalf("%+v %v", h, err)
	}
	got, err := SplitBatch(b[HeaderSize:], 1<<10, FrameResult)
	if err != nil || len(got) != 2 || got[0].ID != 1 || got[1].ID != 2 || got[0].Flags != FlagValues {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := SplitBatch(b[HeaderSize:], 1<<10, FrameCall); err == nil {
		t.Fatal("RESULT items accepted as calls")
	}
	if _, err := SplitBatch(b[HeaderSize:len(b)-1], 1<<10, FrameResult); err == nil {
		t.Fatal("truncated batch accepted")
	}
	// AppendBatchItems appends to the list it is given, and gives it back
	// as it was on error.
	prev := []Frame{{Header: Header{ID: 9}}}
	more, err := AppendBatchItems(prev, b[HeaderSize:], 1<<10, FrameResult)
	if err != nil || len(more) != 3 || more[0].ID != 9 || more[1].ID != 1 || more[2].ID != 2 {
		t.Fatalf("%+v %v", more, err)
	}
	same, err := AppendBatchItems(more[:1], b[HeaderSize:len(b)-1], 1<<10, FrameResult)
	if err == nil || len(same) != 1 || same[0].ID != 9 {
		t.Fatalf("truncated batch: %+v %v", same, err)
	}
}

func TestHandshake(t *testing.T) {
	h := Hello{Versions: []uint16{7, 1}, MaxFrame: 1 << 20, Name: "x"}
	got, err := ParseHello(AppendHello(nil, h))
	if err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("%+v %v", got, err)
	}
	if Choose(got.Versions) != 1 || Choose([]uint16{9}) != 0 {
		t.Fatal("version choice")
	}
	w := Welcome{Version: 1, MaxFrame: 1 << 20, MaxCalls: 8, IdleMillis: 1000, CallMillis: 2000, Identity: "id", Server: "s"}
	gw, err := ParseWelcome(AppendWelcome(nil, w))
	if err != nil || gw != w {
		t.Fatalf("%+v %v", gw, err)
	}
	// Version 2 appends the load and status; version 1 has none of it, so
	// a version-1 peer reads a version-1 WELCOME exactly as before.
	w2 := Welcome{Version: 2, MaxFrame: 1 << 20, MaxCalls: 8, Identity: "id", Server: "s", Conns: 4, Calls: 9, Status: StatusNoLeader}
	b2 := AppendWelcome(nil, w2)
	if gw, err := ParseWelcome(b2); err != nil || gw != w2 || gw.Load() != 13 {
		t.Fatalf("v2: %+v %v", gw, err)
	}
	w1 := w2
	w1.Version = 1
	b1 := AppendWelcome(nil, w1)
	if len(b2)-len(b1) != 12 {
		t.Fatalf("v2 WELCOME is %d bytes longer than v1, want 12", len(b2)-len(b1))
	}
	if gw, err := ParseWelcome(b1); err != nil || gw.Conns != 0 || gw.Status != 0 {
		t.Fatalf("v1 carried the load: %+v %v", gw, err)
	}
	b1[5] = 2 // a v1 body claiming v2: the fields are missing
	if _, err := ParseWelcome(b1); err == nil {
		t.Fatal("short v2 WELCOME accepted")
	}
	if Choose([]uint16{2, 1}) != 2 || Choose([]uint16{1}) != 1 {
		t.Fatal("a new client gets v2, an old one v1")
	}
	if _, err := ParseHello(AppendHello(nil, Hello{Versions: []uint16{1}, MaxFrame: 10})); err == nil {
		t.Fatal("tiny max frame accepted")
	}
	if _, err := ParseHello([]byte("HTTP/1.1 200 OK")); err == nil {
		t.Fatal("not a HELLO accepted")
	}
	g := GoAway{Reason: GoAwayIdle, Message: "idle"}
	gg, err := ParseGoAway(AppendGoAway(nil, g))
	if err != nil || gg != g {
		t.Fatalf("%+v %v", gg, err)
	}
}
