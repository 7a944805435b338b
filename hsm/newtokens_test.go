package hsm

import (
	"strings"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// growingView is one engine's view of a MemoryStorage shared by several
// engines, with GrowingStorage: it remembers which stores it gave.
type growingView struct {
	ms     *MemoryStorage
	mu     sync.Mutex
	handed map[Store]bool
}

func newGrowingView(ms *MemoryStorage) *growingView {
	return &growingView{ms: ms, handed: map[Store]bool{}}
}

func (g *growingView) Stores() ([]Store, error) {
	sts, err := g.ms.Stores()
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.handed)
	for _, st := range sts {
		g.handed[st] = true
	}
	return sts, err
}

func (g *growingView) Create() (Store, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := g.ms.Create()
	if err == nil {
		g.handed[st] = true
	}
	return st, err
}

func (g *growingView) NewStores() ([]Store, error) {
	sts, _ := g.ms.Stores()
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Store
	for _, st := range sts {
		if g.handed[st] {
			continue
		}
		if rec, _ := st.LoadToken(); rec == nil {
			continue
		}
		g.handed[st] = true
		out = append(out, st)
	}
	return out, nil
}

func slotLabels(t *testing.T, m *Module) []string {
	t.Helper()
	slots, err := m.GetSlotList(true)
	must(t, err)
	var out []string
	for i, s := range slots {
		if s != ck.SlotID(i) {
			t.Fatalf("slot list %v: not 0..n-1", slots)
		}
		info, err := m.GetTokenInfo(s)
		must(t, err)
		if info.Flags&ck.CKF_TOKEN_INITIALIZED == 0 {
			out = append(out, "(free)")
			continue
		}
		out = append(out, strings.TrimRight(info.Label, " "))
	}
	return out
}

// A token another engine initialises while this one runs appears in this
// engine's C_GetSlotList: the first in the free slot, with the slot ids
// already handed out unchanged, and it can be logged in to and used.
func TestNewTokenAdoptedBySlotList(t *testing.T) {
	ms := NewMemoryStorage()
	a := startModule(t, newGrowingView(ms))
	initToken(t, a)
	b := startModule(t, newGrowingView(ms))
	if got := strings.Join(slotLabels(t, b), ","); got != "test token,(free)" {
		t.Fatalf("b's slots %s", got)
	}
	// b holds a session on slot 0 across the change.
	sb := openRW(t, b, 0)
	must(t, b.Login(sb, ck.CKU_USER, []byte(userPIN)))

	// a initialises its free slot (1), then makes a third token (2).
	for i, label := range []string{"second", "third"} {
		slot := ck.SlotID(i + 1)
		must(t, a.InitToken(slot, []byte(soPIN), label))
		s := openRW(t, a, slot)
		must(t, a.Login(s, ck.CKU_SO, []byte(soPIN)))
		must(t, a.InitPIN(s, []byte(userPIN)))
		must(t, a.CloseSession(s))
	}
	// A store made but never initialised (C_InitToken's first step) is not
	// shown as a token.
	if _, err := ms.Create(); err != nil {
		t.Fatal(err)
	}

	if got := strings.Join(slotLabels(t, b), ","); got != "test token,second,third,(free)" {
		t.Fatalf("b's slots after a made two tokens: %s", got)
	}
	// Asking again adopts nothing twice.
	if got := strings.Join(slotLabels(t, b), ","); got != "test token,second,third,(free)" {
		t.Fatalf("b's slots asked again: %s", got)
	}
	s2 := openRW(t, b, 1)
	must(t, b.Login(s2, ck.CKU_USER, []byte(userPIN)))
	h, err := b.GenerateKey(s2, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesKeyTemplate(ck.Attribute{Type: ck.CKA_VALUE_LEN, Value: ul(32)}, ck.Attribute{Type: ck.CKA_TOKEN, Value: tb(true)}))
	must(t, err)
	if h == 0 {
		t.Fatal("no key")
	}
	// The session opened before is untouched.
	if _, err := b.GetSessionInfo(sb); err != nil {
		t.Fatalf("old session: %v", err)
	}
	// The free slot after them takes a new token of b's own.
	must(t, b.InitToken(3, []byte(soPIN), "fourth"))
	if got := strings.Join(slotLabels(t, b), ","); got != "test token,second,third,fourth,(free)" {
		t.Fatalf("b's slots after its own token: %s", got)
	}
}
