//go:build !cgo

package main

// callC stands in for the C call of cgo.go in CGO_ENABLED=0 builds.
func callC() int { return 42 }
