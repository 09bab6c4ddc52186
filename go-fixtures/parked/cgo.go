//go:build cgo

package main

/*
#include <unistd.h>
static void csleep(void) { for (;;) sleep(1000); }
*/
import "C"

// cgoSleep blocks forever inside a C function: the goroutine is in
// _Gsyscall ([syscall]) with syscallsp set by runtime.cgocall, and its Go
// stack reads main.cgoSleep -> main._Cfunc_csleep -> runtime.cgocall.
//
//go:noinline
func cgoSleep() { C.csleep() }

// startCgo starts the cgo-only goroutines and returns how many it started.
//
//go:noinline
func startCgo(c chan int) int {
	go cgoSleep()
	return 1
}
