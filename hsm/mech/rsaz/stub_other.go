//go:build !amd64 || purego

package rsaz

var shapes []shape

const haveKernels = false

func selectX2(dst, table *uint64, s, n int, i0, i1 uint64) { panic("rsaz: no kernels") }

var hasIFMA = false
