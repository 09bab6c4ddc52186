//go:build !cgo

package main

func startCgo() {}
