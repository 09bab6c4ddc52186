//go:build !cgo

package main

const haveCgo = false

func spinC(ms int64) {}
