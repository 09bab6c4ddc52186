//go:build cgo

package main

// burnE spends its time in C (the fifth worker, work=e, in cgo builds
// only). Go's profile shows such samples by the Go stack of the cgo call
// (runtime.cgocall, main._Cfunc_burn_e, main.burnE), which gopeek must
// reproduce from outside.

/*
#include <stdint.h>
static uint64_t burn_e(uint64_t x, int n) {
	for (int i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		x ^= x >> 29;
	}
	return x;
}
*/
import "C"

import "sync/atomic"

func init() { cgoWorker = burnE }

//go:noinline
func burnE() {
	x := C.uint64_t(5)
	for {
		x = C.burn_e(x, 1<<16)
		sink += uint64(x)
		atomic.AddUint64(&ops, 1)
	}
}
