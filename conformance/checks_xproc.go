package conformance

import (
	"bytes"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Stale writers across processes. Several applications may use one token
// at once (base 2.5: each process is its own application, 5.6 sessions),
// so a process may hold a view of a token object that another process has
// changed since. The rule these checks hold a module to: sticky attributes
// stay stuck and destroyed objects stay destroyed, whichever process
// writes last. A is a process that loaded the module and found the token
// key K before B changed it; C is a fresh process that loads the module
// afterwards and reports the committed state. B is the suite's own process
// except where the sequence needs more writers (peer.go starts A, C and the
// others). Stale operations (an operation A started, or starts, with what
// it cached) are out of scope: only writes are.

const xprocSpec = "base 4.10 CKA_SENSITIVE/CKA_EXTRACTABLE (one-way), 5.7.6 C_SetAttributeValue"

// xprocKey makes K: a private token AES key, extractable and not
// sensitive, labelled and identified by "xproc-"+name.
func (t *T) xprocKey(sh pkcs11.SessionHandle, name string, extra ...*pkcs11.Attribute) pkcs11.ObjectHandle {
	return t.create(sh, merge([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_VALUE, aesKey128),
		attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
		attr(pkcs11.CKA_LABEL, "xproc-"+name), attr(pkcs11.CKA_ID, []byte("xproc-"+name)),
	}, extra), "token key K")
}

// xprocOpen opens the suite's R/W user session (B's) and makes K.
func (t *T) xprocOpen(name string, extra ...*pkcs11.Attribute) (pkcs11.SessionHandle, pkcs11.ObjectHandle) {
	sh := t.open(true)
	t.loginUser(sh)
	return sh, t.xprocKey(sh, name, extra...)
}

// findK has peer p find K by label and read its value, so that p has
// loaded the object (and whatever it caches of it) before anyone changes it.
func (p *peer) findK(name string) uint {
	h := p.findOne("CKA_LABEL xproc-"+name, attr(pkcs11.CKA_LABEL, "xproc-"+name))
	v, rv := p.get(h, pkcs11.CKA_VALUE, "CKA_VALUE of K")
	if rv != 0 || !bytes.Equal(v, aesKey128) {
		p.t.failf("peer %s: K's CKA_VALUE before the change: %s, %x (want CKR_OK, %x)", p.name, rvName(rv), v, aesKey128)
	}
	return h
}

// wantLocked has a peer check that h is sensitive and not extractable and
// that its value cannot be read.
func (p *peer) wantLocked(h uint, what string) {
	if !p.getBool(h, pkcs11.CKA_SENSITIVE, "CKA_SENSITIVE") {
		p.t.failf("peer %s: %s has CKA_SENSITIVE FALSE: a stale write lowered it", p.name, what)
	}
	if p.getBool(h, pkcs11.CKA_EXTRACTABLE, "CKA_EXTRACTABLE") {
		p.t.failf("peer %s: %s has CKA_EXTRACTABLE TRUE: a stale write raised it", p.name, what)
	}
	p.wantValueSensitive(h, what)
}

func (p *peer) wantValueSensitive(h uint, what string) {
	v, rv := p.get(h, pkcs11.CKA_VALUE, "CKA_VALUE")
	if rv == 0 {
		p.t.failf("peer %s: C_GetAttributeValue(CKA_VALUE) of %s returned the value %x", p.name, what, v)
	}
	if rv != pkcs11.CKR_ATTRIBUTE_SENSITIVE {
		p.t.failf("peer %s: C_GetAttributeValue(CKA_VALUE) of %s: want CKR_ATTRIBUTE_SENSITIVE, got %s", p.name, what, rvName(rv))
	}
}

// wantNone has a peer check that nothing matches.
func (p *peer) wantNone(what string, tmpl ...*pkcs11.Attribute) {
	if hs := p.find(what, tmpl...); len(hs) != 0 {
		p.t.failf("peer %s: C_FindObjects(%s) found %d objects after K was destroyed", p.name, what, len(hs))
	}
}

func (p *peer) label(h uint) string {
	v, rv := p.get(h, pkcs11.CKA_LABEL, "CKA_LABEL")
	if rv != 0 {
		p.t.failf("peer %s: C_GetAttributeValue(CKA_LABEL): %s", p.name, rvName(rv))
	}
	return string(v)
}

func xprocChecks() []check {
	lock := []*pkcs11.Attribute{attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false)}
	return []check{
		{id: "xproc.sensitive.stale-label", spec: xprocSpec + " across processes (a stale C_SetAttributeValue(CKA_LABEL) after another process made K sensitive)", fn: func(t *T) {
			sh, k := t.xprocOpen("a")
			a := t.startPeer("A")
			ha := a.findK("a")
			t.ok(t.setAttr(sh, k, lock...), "B: C_SetAttributeValue(CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=FALSE)")
			rvSet := a.set(ha, "CKA_LABEL", attr(pkcs11.CKA_LABEL, "xproc-a-stale"))
			_, rvA := a.get(ha, pkcs11.CKA_VALUE, "CKA_VALUE after its own set")
			c := t.startPeer("C")
			hc := c.findOne("CKA_ID xproc-a", attr(pkcs11.CKA_ID, []byte("xproc-a")))
			c.wantLocked(hc, "K")
			if l := c.label(hc); rvSet == 0 && l != "xproc-a-stale" {
				t.failf("A's C_SetAttributeValue(CKA_LABEL) returned CKR_OK but C reads the label %q: a committed write was lost", l)
			}
			if rvA != pkcs11.CKR_ATTRIBUTE_SENSITIVE {
				t.failf("A's own C_GetAttributeValue(CKA_VALUE) after its write: want CKR_ATTRIBUTE_SENSITIVE, got %s", rvName(rvA))
			}
			t.note("A's stale C_SetAttributeValue(CKA_LABEL): %s; C sees K sensitive", rvName(rvSet))
		}},
		{id: "xproc.destroyed.stale-label", spec: "base 5.7.3 C_DestroyObject, 5.7.6 C_SetAttributeValue (CKR_OBJECT_HANDLE_INVALID) across processes", fn: func(t *T) {
			sh, k := t.xprocOpen("b")
			a := t.startPeer("A")
			ha := a.findK("b")
			t.ok(t.s.ctx.DestroyObject(sh, k), "B: C_DestroyObject(K)")
			rvSet := a.set(ha, "CKA_LABEL", attr(pkcs11.CKA_LABEL, "xproc-b-stale"))
			c := t.startPeer("C")
			c.wantNone("CKA_ID xproc-b", attr(pkcs11.CKA_ID, []byte("xproc-b")))
			c.wantNone("CKA_LABEL xproc-b", attr(pkcs11.CKA_LABEL, "xproc-b"))
			c.wantNone("CKA_LABEL xproc-b-stale", attr(pkcs11.CKA_LABEL, "xproc-b-stale"))
			t.expectRV(rvSet, "A's C_SetAttributeValue(CKA_LABEL) of the destroyed K", pkcs11.CKR_OBJECT_HANDLE_INVALID)
		}},
		{id: "xproc.sensitive.stale-copy", spec: xprocSpec + ", 5.7.2 C_CopyObject across processes (a stale copy of a key made sensitive)", fn: func(t *T) {
			sh, k := t.xprocOpen("c")
			a := t.startPeer("A")
			ha := a.findK("c")
			t.ok(t.setAttr(sh, k, lock...), "B: C_SetAttributeValue(CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=FALSE)")
			hcopy, rvCopy := a.copy(ha, attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_LABEL, "xproc-c-copy"))
			if rvCopy == 0 {
				a.wantValueSensitive(hcopy, "A's copy of K")
			}
			c := t.startPeer("C")
			c.wantLocked(c.findOne("CKA_LABEL xproc-c", attr(pkcs11.CKA_LABEL, "xproc-c")), "K")
			copies := c.find("CKA_LABEL xproc-c-copy", attr(pkcs11.CKA_LABEL, "xproc-c-copy"))
			switch {
			case rvCopy != 0 && len(copies) != 0:
				t.failf("A's C_CopyObject failed (%s) but C finds %d copies", rvName(rvCopy), len(copies))
			case rvCopy == 0 && len(copies) != 1:
				t.failf("A's C_CopyObject returned CKR_OK but C finds %d copies, want 1", len(copies))
			case rvCopy == 0:
				c.wantLocked(copies[0], "the copy")
			}
			t.note("A's stale C_CopyObject: %s; never a readable value", rvName(rvCopy))
		}},
		{id: "xproc.destroyed.stale-copy", spec: "base 5.7.3 C_DestroyObject, 5.7.2 C_CopyObject across processes (a stale copy of a destroyed key)", fn: func(t *T) {
			sh, k := t.xprocOpen("d")
			a := t.startPeer("A")
			ha := a.findK("d")
			t.ok(t.s.ctx.DestroyObject(sh, k), "B: C_DestroyObject(K)")
			_, rvCopy := a.copy(ha, attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_LABEL, "xproc-d-copy"))
			c := t.startPeer("C")
			c.wantNone("CKA_ID xproc-d", attr(pkcs11.CKA_ID, []byte("xproc-d")))
			c.wantNone("CKA_LABEL xproc-d-copy", attr(pkcs11.CKA_LABEL, "xproc-d-copy"))
			if rvCopy == 0 {
				t.failf("A's C_CopyObject of the destroyed K returned CKR_OK")
			}
			t.note("A's C_CopyObject of the destroyed K: %s", rvName(rvCopy))
		}},
		{id: "xproc.roles.stale-label", spec: "base 4.9 CKA_ENCRYPT/CKA_WRAP, 5.7.6 C_SetAttributeValue across processes (a stale write does not bring back a role given up)", fn: func(t *T) {
			sh, k := t.xprocOpen("e", attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_WRAP, true))
			a := t.startPeer("A")
			ha := a.findK("e")
			if !a.getBool(ha, pkcs11.CKA_ENCRYPT, "CKA_ENCRYPT") || !a.getBool(ha, pkcs11.CKA_WRAP, "CKA_WRAP") {
				t.failf("A reads CKA_ENCRYPT or CKA_WRAP FALSE before the change")
			}
			t.ok(t.setAttr(sh, k, attr(pkcs11.CKA_ENCRYPT, false), attr(pkcs11.CKA_WRAP, false)), "B: C_SetAttributeValue(CKA_ENCRYPT=FALSE, CKA_WRAP=FALSE)")
			rvSet := a.set(ha, "CKA_LABEL", attr(pkcs11.CKA_LABEL, "xproc-e-stale"))
			c := t.startPeer("C")
			hc := c.findOne("CKA_ID xproc-e", attr(pkcs11.CKA_ID, []byte("xproc-e")))
			for _, p := range []struct {
				p *peer
				h uint
			}{{c, hc}, {a, ha}} {
				if p.p.getBool(p.h, pkcs11.CKA_ENCRYPT, "CKA_ENCRYPT") || p.p.getBool(p.h, pkcs11.CKA_WRAP, "CKA_WRAP") {
					t.failf("%s reads CKA_ENCRYPT or CKA_WRAP TRUE after A's stale C_SetAttributeValue(CKA_LABEL) (%s): a role given up came back", p.p.name, rvName(rvSet))
				}
			}
			if l := c.label(hc); rvSet == 0 && l != "xproc-e-stale" {
				t.failf("A's C_SetAttributeValue(CKA_LABEL) returned CKR_OK but C reads the label %q", l)
			}
			t.note("A's stale C_SetAttributeValue(CKA_LABEL): %s; the roles stay given up", rvName(rvSet))
		}},
		{id: "xproc.interleaved-writers", spec: xprocSpec + " across three processes (interleaved stale writers; C sees the newest committed state)", fn: func(t *T) {
			sh, k := t.xprocOpen("f")
			a, b := t.startPeer("A"), t.startPeer("B")
			ha, hb := a.findK("f"), b.findK("f")
			newest := "xproc-f"
			var log []string
			write := func(p *peer, h uint, label string) {
				rv := p.set(h, "CKA_LABEL", attr(pkcs11.CKA_LABEL, label))
				if rv == 0 {
					newest = label
				}
				log = append(log, fmt.Sprintf("%s sets %s: %s", p.name, label, rvName(rv)))
			}
			fresh := func(name string) (*peer, uint) {
				c := t.startPeer(name)
				h := c.findOne("CKA_ID xproc-f", attr(pkcs11.CKA_ID, []byte("xproc-f")))
				if l := c.label(h); l != newest {
					t.failf("%s reads the label %q, want the newest committed %q (%v)", name, l, newest, log)
				}
				return c, h
			}
			write(a, ha, "f-a1")
			write(b, hb, "f-b1")
			c1, h1 := fresh("C1")
			if c1.getBool(h1, pkcs11.CKA_SENSITIVE, "CKA_SENSITIVE") {
				t.failf("C1 reads K sensitive before anyone made it so")
			}
			// The suite's process (B2) has not seen the labels A and B wrote:
			// its write is stale too, and must not bring the first label back.
			t.ok(t.setAttr(sh, k, lock...), "B2: C_SetAttributeValue(CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=FALSE)")
			log = append(log, "B2 makes K sensitive")
			write(a, ha, "f-a2")
			write(b, hb, "f-b2")
			rvLower := a.set(ha, "CKA_SENSITIVE=FALSE", attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true))
			log = append(log, "A sets CKA_SENSITIVE=FALSE, CKA_EXTRACTABLE=TRUE: "+rvName(rvLower))
			write(a, ha, "f-a3")
			a.wantValueSensitive(ha, "K (A's view after its writes)")
			b.wantValueSensitive(hb, "K (B's view after its writes)")
			c2, h2 := fresh("C2")
			c2.wantLocked(h2, "K")
			t.note("%v", log)
		}},
	}
}
