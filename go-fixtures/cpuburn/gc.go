package main

// With CPUBURN_GC set, six more goroutines (work=g, main.churnG) allocate
// without pause while keeping a pointer-rich live heap of about 10 MB, so
// that the garbage collector's mark workers and assists are a sizeable,
// steady share of the process's CPU: the oracle of `gopeek top`'s GC share
// (tests/top.rs), compared with the share of Go's own profile in
// runtime.gcBgMarkWorker and runtime.gcAssistAlloc.

import (
	"os"
	"sync/atomic"
)

type gcNode struct {
	left, right *gcNode
	v           [4]uint64
}

// gcLive is the live heap: every slot is replaced in turn, so each
// allocation makes the node it replaces garbage. New nodes point into
// gcFixed, allocated once, never at other gcLive nodes (which would keep
// the replaced ones reachable and the heap growing).
var (
	gcLive  [1 << 17]*gcNode
	gcFixed [1 << 16]*gcNode
)

func gcEnabled() bool {
	if os.Getenv("CPUBURN_GC") == "" {
		return false
	}
	for i := range gcFixed {
		gcFixed[i] = &gcNode{}
	}
	return true
}

//go:noinline
func churnG() {
	x := uint64(11)
	for i := 0; ; i++ {
		for j := 0; j < 1<<10; j++ {
			x = x*6364136223846793005 + 1442695040888963407
			k := x >> 47 // 17 bits: an index into gcLive
			n := &gcNode{v: [4]uint64{x}}
			n.left = gcFixed[k%uint64(len(gcFixed))]
			n.right = gcFixed[(k+1)%uint64(len(gcFixed))]
			gcLive[k] = n
		}
		atomic.AddUint64(&ops, 1)
	}
}
