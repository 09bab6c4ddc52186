//go:build cgo

package main

/*
static int layoutgen_answer(void) { return 42; }
*/
import "C"

// callC makes a CGO_ENABLED=1 build really cgo-linked (runtime/cgo and the
// external linker), so the tests also cover that variant's DWARF.
func callC() int { return int(C.layoutgen_answer()) }
