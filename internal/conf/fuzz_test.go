package conf

import (
	"strings"
	"testing"
)

// FuzzParse: a configuration file is user input; any bytes give a config
// or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add("mode = local\ndir = \"/x y\" # c\nlog = debug\n")
	f.Add("max_pin_tries = 0")
	f.Add(`dir = "unterminated`)
	f.Add("mode = remote\naddress = 127.0.0.1:5696\nca = ca.pem\ncert = c.pem\nkey = k.pem\ntimeout = 5s\n")
	f.Fuzz(func(t *testing.T, s string) {
		var c Config
		_ = Parse(strings.NewReader(s), &c)
	})
}
