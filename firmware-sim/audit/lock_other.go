//go:build !unix

package audit

import "os"

// lockFile is a no-op where flock does not exist; the appliance runs on
// Linux.
func lockFile(*os.File) error { return nil }
