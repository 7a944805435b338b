//go:build amd64 && !purego

package rsaz

import "golang.org/x/sys/cpu"

// hasIFMA: AVX-512 F (zmm, mask registers, VALIGNQ, VPBLENDMQ) and IFMA
// (VPMADD52LUQ/HUQ), with the OS saving the zmm state (x/sys/cpu checks
// XCR0 before reporting AVX-512).
var hasIFMA = cpu.X86.HasAVX512F && cpu.X86.HasAVX512IFMA
