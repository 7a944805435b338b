package main

import (
	"sync"

	"github.com/gohsm/gohsm/hsm/ck"
)

// The slot list an application sized is the one it gets. PKCS#11 3.0
// §5.5 C_GetSlotList: "the set of slots accessible through a Cryptoki
// library is checked at the time that C_GetSlotList, for list length
// prediction (NULL pSlotList argument) is called"; a change is seen only
// at the next NULL call. The engine adopts tokens that other processes (or
// cluster members) made whenever it is asked for its slots, so without
// this a token made between an application's two calls would turn its
// second call into CKR_BUFFER_TOO_SMALL. The list of the last size query
// is kept, per tokenPresent, and handed to the next call that fills a
// buffer; a call with a buffer and no size query before it asks the
// engine, as the spec allows.
var sizedSlots struct {
	sync.Mutex
	list [2][]ck.SlotID // by tokenPresent
	set  [2]bool
}

// slotListFor returns the slots for a C_GetSlotList call: fresh from get
// for a size query (and kept), the kept ones for the fill that follows.
func slotListFor(tokenPresent, sizeQuery bool, get func(bool) ([]ck.SlotID, error)) ([]ck.SlotID, error) {
	i := 0
	if tokenPresent {
		i = 1
	}
	if !sizeQuery {
		sizedSlots.Lock()
		list, ok := sizedSlots.list[i], sizedSlots.set[i]
		sizedSlots.list[i], sizedSlots.set[i] = nil, false
		sizedSlots.Unlock()
		if ok {
			return list, nil
		}
		return get(tokenPresent)
	}
	list, err := get(tokenPresent)
	if err != nil {
		return nil, err
	}
	sizedSlots.Lock()
	sizedSlots.list[i], sizedSlots.set[i] = list, true
	sizedSlots.Unlock()
	return list, nil
}

// forgetSizedSlots drops the kept lists (C_Finalize, C_Initialize).
func forgetSizedSlots() {
	sizedSlots.Lock()
	sizedSlots.list, sizedSlots.set = [2][]ck.SlotID{}, [2]bool{}
	sizedSlots.Unlock()
}
