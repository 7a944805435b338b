package rsaz

import "os"

// disabled is GOHSM_RSAZ=off (or 0, false): use crypto/rsa everywhere.
var disabled = func() bool {
	switch os.Getenv("GOHSM_RSAZ") {
	case "off", "0", "false", "no":
		return true
	}
	return false
}()

// Supported reports whether this CPU runs the IFMA kernels, whatever the
// environment says.
func Supported() bool { return haveKernels && hasIFMA }

// Enabled reports whether private-key operations go through this package:
// the CPU supports it and GOHSM_RSAZ does not turn it off.
func Enabled() bool { return Supported() && !disabled }
