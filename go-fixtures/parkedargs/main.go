// Command parkedargs is gopeek's oracle for arguments: goroutines parked
// in //go:noinline functions whose arguments exercise every rule of Go's
// printArgs (runtime/traceback.go): integers of every size, negative
// numbers, floats, pointers, strings, slices, interfaces, structs (nested,
// small fields, more than 10 components: `...`), more than 10 arguments
// (`...`), arguments past offset 250 of the argument area (`_`), dead
// register arguments (`?`) and a frame whose PC is inside an inlined call
// (Go 1.19 looks liveness up at the outermost call site). Every value is a
// constant or points at memory that does not move (heap, static data).
//
//	parkedargs -out FILE [-lifetime DURATION]
//
// Once every goroutine is parked it writes runtime.Stack(buf, true) to FILE
// (via FILE.tmp and a rename), prints "ready <pid>" and stays parked.
// Goroutine 1 runs in the dump (it is the caller of runtime.Stack); compare
// the others.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

var keep []interface{}

//go:noinline
func hold(v ...interface{}) { keep = append(keep, v...) }

type pair struct{ a, b int }

type small struct {
	x int8
	y uint16
	z int32
	f float64
}

type nested struct {
	p pair
	s small
	q [2]int16
}

// deep5 nests its array five levels down, where Go stops at `{...}`
// (counting one component): the next argument sits past offset 250.
type deep5 struct {
	l1 struct{ l2 struct{ l3 struct{ l4 struct{ big [40]int64 } } } }
}

type wide struct {
	a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11 int
}

var (
	gstr   = "hello, arguments"
	gbytes = make([]byte, 3, 8)
	gpair  = &pair{1, 2}
	gerr   = errors.New("parked")
)

// Live arguments: used after the receive, so spilled before it.
//
//go:noinline
func argsInts(a, b, c int, ch chan int) {
	<-ch
	hold(a, b, c)
}

// Dead arguments: never used after entry, so their spill slots are not
// written and Go prints them with `?`.
//
//go:noinline
func argsDead(a, b int, ch chan int) { <-ch }

//go:noinline
func argsMany(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11 int, ch chan int) {
	<-ch
	hold(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)
}

//go:noinline
func argsRefs(s string, b []byte, p *pair, e error, i interface{}, ch chan int) {
	<-ch
	hold(s, b, p, e, i)
}

//go:noinline
func argsStructs(p pair, s small, n nested, ch chan int) {
	<-ch
	hold(p, s, n)
}

//go:noinline
func argsWide(w wide, ch chan int) {
	<-ch
	hold(w)
}

//go:noinline
func argsFar(big [40]int64, x int, ch chan int) {
	<-ch
	hold(big[0], big[39], x)
}

//go:noinline
func argsBeyond(d deep5, x int, ch chan int) {
	<-ch
	hold(d, x)
}

//go:noinline
func argsSmall(a int8, b uint16, c int32, d bool, f float32, g float64, ch chan int) {
	<-ch
	hold(a, b, c, d, f, g)
}

//go:noinline
func argsVariadic(ch chan int, xs ...int) {
	<-ch
	hold(xs)
}

func inlRecv(ch chan int) int { return <-ch }

// The receive is inlined: the physical frame's PC is inside inlRecv.
//
//go:noinline
func argsInlined(a, b int, ch chan int) int {
	r := inlRecv(ch)
	return r + a + b
}

func inlRecvMust(ch chan int, ok bool) int {
	if !ok {
		panic("not ok")
	}
	return <-ch
}

// Only the path past the inlined check needs a and b, so their spills sink
// below the inlined call's start: live at the receive, not at the call
// site Go 1.19 looks liveness up at.
//
//go:noinline
func argsInlinedSpill(a, b int, ok bool, ch chan int) int {
	r := inlRecvMust(ch, ok)
	return r + a + b
}

// argsDepth is a caller frame with arguments above a callee that parks.
//
//go:noinline
func argsDepth(n int, s string, ch chan int) int {
	if n == 0 {
		<-ch
		return len(s)
	}
	return argsDepth(n-1, s, ch) + n
}

func main() {
	out := flag.String("out", "", "write Go's own traceback of all goroutines to this `file` (required)")
	lifetime := flag.Duration("lifetime", 0, "exit after this `duration` (0: run until killed)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: parkedargs -out FILE [-lifetime DURATION]")
		os.Exit(2)
	}
	if *lifetime > 0 {
		time.AfterFunc(*lifetime, func() { os.Exit(0) })
	}
	ch := make(chan int) // never sent to
	n := 0
	start := func(f func()) { go f(); n++ }
	start(func() { argsInts(1, -2, 0x7fffffffffffffff, ch) })
	start(func() { argsDead(0x11, 0x22, ch) })
	start(func() { argsMany(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ch) })
	start(func() { argsRefs(gstr, gbytes, gpair, gerr, 42, ch) })
	start(func() {
		argsStructs(pair{3, 4}, small{-1, 0xbeef, -3, 1.5},
			nested{pair{5, 6}, small{7, 8, 9, -0.25}, [2]int16{-10, 11}}, ch)
	})
	start(func() { argsWide(wide{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, ch) })
	start(func() {
		var big [40]int64
		for i := range big {
			big[i] = int64(i) * 3
		}
		argsFar(big, 99, ch)
	})
	start(func() {
		var d deep5
		d.l1.l2.l3.l4.big[39] = 1
		argsBeyond(d, 77, ch)
	})
	start(func() { argsSmall(-8, 0xffff, 1<<30, true, 2.5, -1e300, ch) })
	start(func() { argsVariadic(ch, 5, 6, 7) })
	start(func() { argsInlined(0x1234, 0x5678, ch) })
	start(func() { argsInlinedSpill(0x9a, 0xbc, true, ch) })
	start(func() { argsDepth(3, gstr, ch) })

	dump := settle(1 + n)
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, dump, 0o644); err != nil {
		fatal(err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		fatal(err)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	select {}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "parkedargs:", err)
	os.Exit(1)
}

// settle waits for want goroutines, none but the caller running or
// runnable, and returns the first of two identical runtime.Stack dumps
// taken 100ms apart.
func settle(want int) []byte {
	deadline := time.Now().Add(60 * time.Second)
	var prev []byte
	for {
		time.Sleep(100 * time.Millisecond)
		buf := make([]byte, 1<<20)
		dump := buf[:runtime.Stack(buf, true)]
		blocks := bytes.Split(bytes.TrimRight(dump, "\n"), []byte("\n\n"))
		ok := len(blocks) == want
		for _, b := range blocks[1:] {
			header, _, _ := bytes.Cut(b, []byte("\n"))
			if bytes.Contains(header, []byte("[running")) || bytes.Contains(header, []byte("[runnable")) {
				ok = false
			}
		}
		rest := bytes.Join(blocks[1:], []byte("\n\n"))
		if ok && prev != nil && bytes.Equal(prev, rest) {
			return dump
		}
		prev = nil
		if ok {
			prev = rest
		}
		if time.Now().After(deadline) {
			fatal(fmt.Errorf("timeout: goroutines did not settle"))
		}
	}
}
