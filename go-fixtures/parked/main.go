// Command parked is gopeek's oracle fixture. It parks goroutines in every
// state a user meets, each in its own //go:noinline function so that the
// frames are recognizable, waits until they have all settled, writes Go's
// own traceback of every goroutine (runtime.Stack(buf, true)) to a file, and
// then stays exactly like that forever, so that a dump taken from outside
// (gopeek) can be compared with Go's own.
//
//	parked -out FILE [-extra N] [-lifetime DURATION]
//
//	-out FILE       required. The dump is written to FILE.tmp and renamed to
//	                FILE once complete, so FILE never holds a partial dump.
//	-extra N        also park N goroutines in chan receive at recursion
//	                depths 1..12 (main.parkExtra; depth = 1 + i%12), for
//	                scale tests. Default 0.
//	-lifetime D     exit(0) after D (e.g. 10m) as a safety net against
//	                leaked fixtures. Default 0: run until killed.
//	-pprof FILE     also write Go's own goroutine profile (what
//	                /debug/pprof/goroutine serves) to FILE, right after the
//	                dump, for gopeek's --format pprof tests.
//
// After the dump is written, it prints "ready <pid>" on stdout (one line)
// and idles forever.
//
// Settling: main polls runtime.NumGoroutine() until it equals the expected
// count, then takes runtime.Stack snapshots 200ms apart until two consecutive
// ones are identical (ignoring goroutine 1 and the spinner) and no parked
// goroutine is running or runnable. That last snapshot is the one written.
//
// What differs between the dump and what an outside reader sees later:
//   - goroutine 1 (main) is "running" in the dump (it is the caller of
//     runtime.Stack); afterwards it sits in main.idle [chan receive].
//   - the spinner (main.spin) is "running" or "runnable" at any time.
//   - runtime.GC is deliberately never called. The runtime sets g.waitsince
//     only during a GC's stack scan, so ", N minutes" appears in a header only
//     after a GC ran while the goroutine was blocked and a minute has passed.
//     A GC can still happen on its own (e.g. with a large -extra). The dump is
//     taken within seconds of start, so it never has ", N minutes"; a reader
//     running more than a minute later may.
//   - pprof labels show in headers only with GODEBUG=tracebacklabels=1 on
//     1.26+ (the go.mod says go 1.19, so the 1.27 default of 1 does not apply).
//     Set the variable in the fixture's environment to get them.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

// sink is incremented by the spinner forever.
var sink int

// keep holds every object whose finalizer would otherwise close a file
// descriptor and wake a parked goroutine (net.Conn, net.Listener, pipes).
var keep []interface{}

// ---------------------------------------------------------------------------
// Channels

//go:noinline
func chanReceive(c chan int) { <-c }

//go:noinline
func chanSend(c chan int) { c <- 1 }

//go:noinline
func selectTwo(a, b chan int) {
	select {
	case <-a:
	case <-b:
	}
}

//go:noinline
func selectNoCases() { select {} }

//go:noinline
func nilChanReceive() {
	var c chan int
	<-c
}

//go:noinline
func nilChanSend() {
	var c chan int
	c <- 1
}

// ---------------------------------------------------------------------------
// sync

//go:noinline
func mutexLock(mu *sync.Mutex) { mu.Lock() }

//go:noinline
func rwMutexRLock(rw *sync.RWMutex) { rw.RLock() }

//go:noinline
func rwMutexLock(rw *sync.RWMutex) { rw.Lock() }

//go:noinline
func waitGroupWait(wg *sync.WaitGroup) { wg.Wait() }

//go:noinline
func condWait(cond *sync.Cond) {
	cond.L.Lock()
	cond.Wait()
	cond.L.Unlock()
}

// ---------------------------------------------------------------------------
// time, network, syscalls, threads

//go:noinline
func sleepHour() { time.Sleep(time.Hour) }

//go:noinline
func netRead(conn net.Conn) {
	buf := make([]byte, 1)
	conn.Read(buf)
}

//go:noinline
func netAccept(ln net.Listener) {
	ln.Accept()
}

// rawSyscallRead does a blocking read(2) on a blocking pipe fd: the goroutine
// stays in _Gsyscall ([syscall]) with syscallsp set.
//
//go:noinline
func rawSyscallRead(fd int) {
	buf := make([]byte, 1)
	syscall.Read(fd, buf)
}

//go:noinline
func lockedReceive(c chan int) {
	runtime.LockOSThread()
	<-c
}

// ---------------------------------------------------------------------------
// Stack shapes

// deep(n, c) is n frames of main.deep, the innermost one blocked in <-c.
//
//go:noinline
func deep(n int, c chan int) int {
	if n <= 1 {
		<-c
		return 0
	}
	return deep(n-1, c) + 1
}

// parkExtra is deep's twin for the -extra goroutines.
//
//go:noinline
func parkExtra(n int, c chan int) int {
	if n <= 1 {
		<-c
		return 0
	}
	return parkExtra(n-1, c) + 1
}

// inlinedLeaf and inlinedMid are inlined into inlineOuter (unless built with
// -gcflags=all=-l): the traceback shows them as inlined frames with "(...)".
func inlinedLeaf(c chan int) { <-c }
func inlinedMid(c chan int)  { inlinedLeaf(c) }

//go:noinline
func inlineOuter(c chan int) { inlinedMid(c) }

type worker struct {
	id int
	c  chan int
}

//go:noinline
func (w *worker) ptrWait() { <-w.c }

//go:noinline
func (w worker) valueWait() { <-w.c }

//go:noinline
func genericWait[T any](c chan T) { <-c }

type Box[K comparable] struct {
	m map[K]int
}

//go:noinline
func (b *Box[K]) Wait(c chan int) { <-c }

// deferBlocked returns at once, and blocks in its deferred call.
//
//go:noinline
func deferBlocked(c chan int) {
	defer func() { <-c }()
	sink2++
}

var sink2 int

//go:noinline
func labeled(c chan int) {
	pprof.Do(context.Background(), pprof.Labels("tenant", "acme", "user id", "x y"), func(context.Context) {
		<-c
	})
}

//go:noinline
func spin() {
	for {
		sink++
	}
}

// spawner, spawnChild and spawnGrandchild make "created by X in goroutine N"
// with N != 1: spawner (created by main.main) starts spawnChild, which starts
// spawnGrandchild; all three then block in chan receive.
//
//go:noinline
func spawner(c chan int) {
	go spawnChild(c)
	<-c
}

//go:noinline
func spawnChild(c chan int) {
	go spawnGrandchild(c)
	<-c
}

//go:noinline
func spawnGrandchild(c chan int) { <-c }

//go:noinline
func idle(c chan int) { <-c }

func main() {
	out := flag.String("out", "", "write Go's own traceback of all goroutines to this `file` (required)")
	extra := flag.Int("extra", 0, "also park `N` goroutines in chan receive at depths 1..12")
	lifetime := flag.Duration("lifetime", 0, "exit after this `duration` (0: run until killed)")
	profile := flag.String("pprof", "", "also write Go's own goroutine profile (pprof, debug=0) to this `file`")
	flag.Parse()
	if *out == "" || *extra < 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: parked -out FILE [-extra N] [-lifetime DURATION]")
		os.Exit(2)
	}
	if *lifetime > 0 {
		exitAfter(*lifetime)
	}

	c := make(chan int)      // never sent to, never closed
	noRecv := make(chan int) // never received from
	other := make(chan int)  // never sent to
	n := 0                   // goroutines started (directly or not) besides main

	go chanReceive(c)
	n++
	go chanSend(noRecv)
	n++
	go selectTwo(c, other)
	n++
	go selectNoCases()
	n++
	go nilChanReceive()
	n++
	go nilChanSend()
	n++

	var mu sync.Mutex
	mu.Lock()
	go mutexLock(&mu)
	n++
	var rwR sync.RWMutex
	rwR.Lock() // writer held: RLock blocks
	go rwMutexRLock(&rwR)
	n++
	var rwW sync.RWMutex
	rwW.RLock() // reader held: Lock blocks
	go rwMutexLock(&rwW)
	n++
	var wg sync.WaitGroup
	wg.Add(1)
	go waitGroupWait(&wg)
	n++
	cond := sync.NewCond(&sync.Mutex{})
	go condWait(cond)
	n++

	go sleepHour()
	n++

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		fatal(err)
	}
	keep = append(keep, ln, client, server)
	go netRead(server)
	n++
	go netAccept(ln)
	n++

	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil { // blocking fds, no finalizer
		fatal(err)
	}
	go rawSyscallRead(p[0])
	n++

	go lockedReceive(c)
	n++

	go deep(60, c)
	n++
	go deep(150, c)
	n++
	go inlineOuter(c)
	n++

	go func() {
		<-c
	}()
	n++

	w := &worker{id: 7, c: c}
	go w.ptrWait()
	n++
	go (*w).valueWait()
	n++
	go genericWait[string](make(chan string))
	n++
	b := &Box[int]{}
	go b.Wait(c)
	n++

	go deferBlocked(c)
	n++
	go labeled(c)
	n++

	go spawner(c)
	n += 3

	go spin()
	n++

	n += startCgo(c)

	for i := 0; i < *extra; i++ {
		go parkExtra(1+i%12, c)
	}
	n += *extra

	dump := settle(1 + n)
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, dump, 0o644); err != nil {
		fatal(err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		fatal(err)
	}
	if *profile != "" {
		writeGoroutineProfile(*profile)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	os.Stdout.Sync()

	idle(c)
	keepAlive(&mu, &rwR, &rwW, &wg, cond, noRecv, other, p)
}

// exitAfter exits the process after d. (A named function, so that the only
// closure in main.main is the parked one, main.main.func1.) The timer runs
// its function in a new goroutine only when it fires.
func exitAfter(d time.Duration) {
	time.AfterFunc(d, func() { os.Exit(0) })
}

//go:noinline
func keepAlive(...interface{}) {}

// writeGoroutineProfile writes what /debug/pprof/goroutine serves (the
// gzipped protobuf) to path via path.tmp and a rename: the oracle for
// gopeek's --format pprof.
func writeGoroutineProfile(path string) {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		fatal(err)
	}
	if err := pprof.Lookup("goroutine").WriteTo(f, 0); err != nil {
		fatal(err)
	}
	if err := f.Close(); err != nil {
		fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "parked:", err)
	os.Exit(1)
}

// stackAll returns runtime.Stack(buf, true), growing buf until it fits.
func stackAll() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// settle waits until want goroutines exist, none but main and the spinner is
// running or runnable, and two snapshots 200ms apart agree. It returns the
// last snapshot. It gives up (exit 1) after 60 seconds.
func settle(want int) []byte {
	deadline := time.Now().Add(60 * time.Second)
	for runtime.NumGoroutine() != want {
		if time.Now().After(deadline) {
			fatal(fmt.Errorf("timeout: %d goroutines, want %d", runtime.NumGoroutine(), want))
		}
		time.Sleep(10 * time.Millisecond)
	}
	var prev []byte
	for {
		time.Sleep(200 * time.Millisecond)
		dump := stackAll()
		stable, ok := stableView(dump, want)
		if ok && prev != nil && bytes.Equal(prev, stable) {
			return dump
		}
		if ok {
			prev = stable
		} else {
			prev = nil
		}
		if time.Now().After(deadline) {
			fatal(fmt.Errorf("timeout: goroutines did not settle"))
		}
	}
}

// stableView drops the current goroutine's block (the first one) and the
// spinner's from a runtime.Stack dump, and says whether the rest has want-2
// goroutines, none of them running or runnable.
func stableView(dump []byte, want int) ([]byte, bool) {
	blocks := bytes.Split(bytes.TrimRight(dump, "\n"), []byte("\n\n"))
	if len(blocks) != want {
		return nil, false
	}
	var out bytes.Buffer
	for i, b := range blocks {
		if i == 0 || bytes.Contains(b, []byte("\nmain.spin(")) {
			continue
		}
		header := b
		if j := bytes.IndexByte(b, '\n'); j >= 0 {
			header = b[:j]
		}
		if bytes.Contains(header, []byte("[running")) || bytes.Contains(header, []byte("[runnable")) {
			return nil, false
		}
		out.Write(b)
		out.WriteString("\n\n")
	}
	return out.Bytes(), true
}
