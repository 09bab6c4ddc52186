//go:build cgo

package main

/*
static int cgo_answer(void) { return 42; }
*/
import "C"

// startCgo makes a cgo build really cgo-linked (runtime/cgo, external
// linker) and calls into C once.
func startCgo() {
	if C.cgo_answer() != 42 {
		panic("cgo")
	}
}
