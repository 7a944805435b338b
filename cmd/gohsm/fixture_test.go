package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsmtest/fixture"
)

// fakeModule is a file where libgohsm.so would be: fixture up only prints
// the module's path.
func fakeModule(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "libgohsm.so")
	if err := os.WriteFile(p, []byte("not a module"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFixtureUpFormats(t *testing.T) {
	mod := fakeModule(t)
	dir := filepath.Join(t.TempDir(), "fx")
	var out bytes.Buffer
	if err := fixtureUp([]string{"--dir", dir, "--module", mod, "--keys", "ec", "--keys", "aes", "--label", "ci", "--format", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Module     string            `json:"module"`
		Env        map[string]string `json:"env"`
		Slot       *uint64           `json:"slot"`
		TokenLabel string            `json:"token_label"`
		UserPIN    string            `json:"user_pin"`
		SOPIN      string            `json:"so_pin"`
		URI        string            `json:"uri"`
		Keys       []struct{ Label string }
	}
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if j.Module != mod || j.Slot == nil || *j.Slot != 0 || j.TokenLabel != "ci" || j.UserPIN != "1234" || j.SOPIN != "12345678" ||
		!strings.HasPrefix(j.URI, "pkcs11:token=ci;") || len(j.Keys) != 2 || j.Env["GOHSM_CONF"] != filepath.Join(dir, "gohsm.conf") {
		t.Fatalf("json form:\n%s", out.String())
	}

	for format, want := range map[string]string{
		"sh":     "export GOHSM_CONF=" + filepath.Join(dir, "gohsm.conf") + "\n",
		"github": "GOHSM_CONF=" + filepath.Join(dir, "gohsm.conf") + "\n",
	} {
		out.Reset()
		if err := fixtureEnv([]string{"--dir", dir, "--format", format}, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "GOHSM_MODULE=") {
			t.Errorf("%s form:\n%s", format, out.String())
		}
	}

	if err := fixtureDown([]string{"--dir", filepath.Dir(mod)}); err == nil {
		t.Fatal("down removed a directory that is not a fixture")
	}
	if _, err := os.Stat(mod); err != nil {
		t.Fatal(err)
	}
	t.Setenv(fixture.EnvFixtureDir, dir)
	if err := fixtureDown(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("after down: %v", err)
	}
}

func TestFixtureUpErrors(t *testing.T) {
	mod := fakeModule(t)
	var out bytes.Buffer
	for _, args := range [][]string{
		{"--format", "yaml", "--module", mod},
		{"--keys", "dsa", "--module", mod},
		{"--module", filepath.Join(t.TempDir(), "missing.so")},
		{"--module", mod, "extra"},
	} {
		args = append([]string{"--dir", filepath.Join(t.TempDir(), "fx")}, args...)
		if err := fixtureUp(args, &out); err == nil {
			t.Errorf("fixture up %v worked", args)
		}
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q on errors", out.String())
	}
	if err := fixtureCmd([]string{"sideways"}); err == nil {
		t.Fatal("unknown subcommand accepted")
	}
}

// TestFindModule: beside the binary first, then GOHSM_MODULE.
func TestFindModule(t *testing.T) {
	mod := fakeModule(t)
	t.Setenv(fixture.EnvModule, mod)
	got, err := findModule("")
	if err != nil {
		t.Fatal(err)
	}
	// The test binary has no libgohsm.so beside it; /usr/local/lib/gohsm
	// may have one.
	if got != mod && got != "/usr/local/lib/gohsm/libgohsm.so" {
		t.Fatalf("found %s", got)
	}
	t.Setenv(fixture.EnvModule, "")
	if _, err := os.Stat("/usr/local/lib/gohsm/libgohsm.so"); err != nil {
		if _, err := findModule(""); err == nil {
			t.Fatal("found a module where there is none")
		}
	}
}
