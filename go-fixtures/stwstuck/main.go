// Command stwstuck holds a stop-the-world stuck for as long as -hold says,
// so that gopeek's view of the scheduler can be compared with the
// runtime's own (run it with GODEBUG=schedtrace=250,scheddetail=1): while
// the stop waits, nothing schedules and both see the same frozen state.
//
//	-mode=nosplit  a goroutine spins in a nosplit, noinline function: no
//	               prologue stack check and every PC an async-unsafe point
//	-mode=plain    an ordinary loop; run with GODEBUG=asyncpreemptoff=1
//	-mode=none     control: the same loop, preemptible (the stop succeeds)
//	-mode=cgo      a C function spins (cgo builds only): never blocks a stop
//	-stw=gc        runtime.GC() starts the stop (GC sweep termination)
//	-stw=memstats  runtime.ReadMemStats starts it ("read mem stats")
//	-procs=N       GOMAXPROCS
//
// It prints "ready <pid>" first, then "calling <stw>" on stdout when the stop is about to start and
// "returned after <duration>" when it is over.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	_ "unsafe" // go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

var (
	started uint32
	spins   uint64
)

// spinNosplit has no stack check (nosplit) and, being nosplit, no async
// safe point either. noinline: since Go 1.22 `go f()` wraps f, and an
// inlined nosplit f would become an ordinary, preemptible wrapper.
//
//go:nosplit
//go:noinline
func spinNosplit(deadline int64) {
	atomic.StoreUint32(&started, 1)
	for nanotime() < deadline {
		spins++
	}
}

//go:noinline
func spinPlain(deadline int64) {
	atomic.StoreUint32(&started, 1)
	for nanotime() < deadline {
		spins++
	}
}

func main() {
	mode := flag.String("mode", "nosplit", "nosplit | plain | none | cgo")
	stw := flag.String("stw", "gc", "gc | memstats")
	procs := flag.Int("procs", 2, "GOMAXPROCS")
	hold := flag.Duration("hold", 2*time.Second, "how long the spinner spins")
	flag.Parse()
	fmt.Printf("ready %d\n", os.Getpid())
	runtime.GOMAXPROCS(*procs)
	deadline := nanotime() + hold.Nanoseconds()
	switch *mode {
	case "nosplit":
		go spinNosplit(deadline)
	case "plain", "none":
		go spinPlain(deadline)
	case "cgo":
		if !haveCgo {
			fmt.Fprintln(os.Stderr, "stwstuck: -mode=cgo needs a cgo build")
			os.Exit(2)
		}
		go func() {
			atomic.StoreUint32(&started, 1)
			spinC(hold.Milliseconds())
		}()
	default:
		fmt.Fprintln(os.Stderr, "stwstuck: unknown -mode", *mode)
		os.Exit(2)
	}
	for atomic.LoadUint32(&started) == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	fmt.Printf("calling %s\n", *stw)
	t0 := time.Now()
	switch *stw {
	case "gc":
		runtime.GC()
	case "memstats":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
	default:
		fmt.Fprintln(os.Stderr, "stwstuck: unknown -stw", *stw)
		os.Exit(2)
	}
	fmt.Printf("returned after %v\n", time.Since(t0))
	// Let the spinner (or the C call) finish, then a last trace.
	for nanotime() < deadline {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	fmt.Println("done")
}
