//go:build !cgo

package main

// startCgo starts the cgo-only goroutines (none without cgo).
//
//go:noinline
func startCgo(c chan int) int { return 0 }
