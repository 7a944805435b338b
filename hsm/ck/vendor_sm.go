package ck

// The SM code tables. Placeholder default profile; the SM work replaces this
// file with the documented vendor tables.
var DefaultProfile = &Profile{
	Name:        "gohsm",
	Description: "gohsm default SM codes",
	Codes:       map[string]ULong{},
}

var profiles = []*Profile{DefaultProfile}
