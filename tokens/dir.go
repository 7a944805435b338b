package tokens

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Dir is a directory of tokens, one SQLite file each: root/tokens/NNNNNN.db.
// The number records creation order, which is the slot order, so slots keep
// their place across restarts and in every process. It implements
// hsm.Storage.
type Dir struct {
	root string

	mu     sync.Mutex
	stores []*Store // opened through this Dir, closed by Close
}

const tokensSubdir = "tokens"

// Open opens (creating it if needed) the token directory dir. The
// directories are created 0700 and token files 0600: they hold wrapped
// keys and the attributes of every object.
func Open(dir string) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("token directory %s: %w: %w", dir, err, ck.CKR_DEVICE_ERROR)
	}
	if err := os.MkdirAll(filepath.Join(abs, tokensSubdir), 0o700); err != nil {
		return nil, fmt.Errorf("token directory %s: %w: %w", dir, err, ck.CKR_DEVICE_ERROR)
	}
	return &Dir{root: abs}, nil
}

// Root is the directory the Dir was opened on.
func (d *Dir) Root() string { return d.root }

func (d *Dir) tokensDir() string { return filepath.Join(d.root, tokensSubdir) }

// files returns the token files in slot order.
func (d *Dir) files() ([]string, []int, error) {
	ents, err := os.ReadDir(d.tokensDir())
	if err != nil {
		return nil, nil, fmt.Errorf("token directory %s: %w: %w", d.root, err, ck.CKR_DEVICE_ERROR)
	}
	type tok struct {
		n    int
		name string
	}
	var toks []tok
	for _, e := range ents {
		stem, ok := strings.CutSuffix(e.Name(), ".db")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.Atoi(stem)
		if err != nil || n <= 0 {
			continue // temporary files of Create, or not ours
		}
		toks = append(toks, tok{n, e.Name()})
	}
	slices.SortFunc(toks, func(a, b tok) int { return a.n - b.n })
	paths := make([]string, len(toks))
	nums := make([]int, len(toks))
	for i, t := range toks {
		paths[i] = filepath.Join(d.tokensDir(), t.name)
		nums[i] = t.n
	}
	return paths, nums, nil
}

func (d *Dir) track(s *Store) {
	d.mu.Lock()
	d.stores = append(d.stores, s)
	d.mu.Unlock()
}

// Stores opens every token in slot order. A token that cannot be opened
// (damaged, written by a newer gohsm) fails the whole call with an error
// naming its file and wrapping CKR_DEVICE_ERROR: serving the others in
// shifted slots would point applications at the wrong token.
func (d *Dir) Stores() ([]hsm.Store, error) {
	paths, _, err := d.files()
	if err != nil {
		return nil, err
	}
	out := make([]hsm.Store, 0, len(paths))
	for _, p := range paths {
		s, err := openStore(p, false)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		s.shareChanges()
		out = append(out, s)
	}
	for _, s := range out {
		d.track(s.(*Store))
	}
	return out, nil
}

// Create makes a new, empty token in the next slot. The schema is written
// into a temporary file that is then linked under its final name, which
// fails if another process took the number first; so a NNNNNN.db file
// always holds a complete schema, and one that does not is damaged.
func (d *Dir) Create() (hsm.Store, error) {
	dir := d.tokensDir()
	f, err := os.CreateTemp(dir, ".new-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("create token: %w: %w", err, ck.CKR_DEVICE_ERROR)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(0o600)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create token: %w: %w", err, ck.CKR_DEVICE_ERROR)
	}
	s, err := openStore(tmp, true)
	if err != nil {
		return nil, err
	}
	// Closing the only connection checkpoints and removes the WAL, so the
	// single file carries everything.
	if err := s.Close(); err != nil {
		return nil, err
	}
	st, err := d.install(tmp)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// install links the complete token file tmp under the next free slot
// number and opens it. Link fails if another process took the number
// first, so two processes creating or restoring at once never share a slot;
// the caller removes tmp.
func (d *Dir) install(tmp string) (*Store, error) {
	dir := d.tokensDir()
	for range 1000 {
		_, nums, err := d.files()
		if err != nil {
			return nil, err
		}
		n := 1
		if len(nums) > 0 {
			n = nums[len(nums)-1] + 1
		}
		final := filepath.Join(dir, fmt.Sprintf("%06d.db", n))
		err = os.Link(tmp, final)
		if errors.Is(err, fs.ErrExist) {
			continue // another process created this slot just now
		}
		if err != nil {
			return nil, fmt.Errorf("create token: %w: %w", err, ck.CKR_DEVICE_ERROR)
		}
		if err := syncDir(dir); err != nil {
			return nil, fmt.Errorf("create token: %w: %w", err, ck.CKR_DEVICE_ERROR)
		}
		s, err := openStore(final, false)
		if err != nil {
			return nil, err
		}
		s.shareChanges()
		d.track(s)
		return s, nil
	}
	return nil, fmt.Errorf("create token: no free slot number: %w", ck.CKR_DEVICE_ERROR)
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes every store opened through d that is still open.
func (d *Dir) Close() error {
	d.mu.Lock()
	stores := d.stores
	d.stores = nil
	d.mu.Unlock()
	var errs []error
	for _, s := range stores {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

var _ hsm.Storage = (*Dir)(nil)
