//go:build cgo

package main

/*
#include <time.h>
static void spin_ms(long ms) {
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &b);
		if ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= ms) return;
	}
}
*/
import "C"

const haveCgo = true

// spinC keeps its thread busy in C for ms milliseconds: a long cgo call.
func spinC(ms int64) { C.spin_ms(C.long(ms)) }
