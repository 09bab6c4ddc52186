// cpuburn burns CPU in four functions under four pprof labels, the oracle
// for `gopeek record`: it profiles itself with runtime/pprof over an
// interval the test chooses, so gopeek's profile of the same interval can
// be compared with Go's own.
//
//	main.burnA   work=a  plain arithmetic, 4 goroutines
//	main.burnB   work=b  its hot loop is main.mixB, inlined into it, 3 goroutines
//	main.burnC   work=c  syscall-heavy: reads /dev/zero, 2 goroutines
//	main.burnD   work=d  calls main.leafD (generic, not inlined), 1 goroutine
//	main.burnE   work=e  in C through cgo (cgo builds only, cgo.go), 1 goroutine
//	main.churnG  work=g  allocates, keeping the GC busy (CPUBURN_GC set, gc.go), 6 goroutines
//
// Protocol: prints `workers {"a":[goids],...}` (which goroutine ids run
// which function), then `ready <pid>`, once every worker runs. On the
// Nth SIGUSR1 it writes a CPU profile of the next CPUBURN_SECONDS seconds
// (default 4) at CPUBURN_HZ (default 500) to $CPUBURN_PROFILE.N and
// prints `profiled N`.
// With CPUBURN_OPS_EVERY set (a Go duration), it also prints
// `ops TOTAL UNIX_NS` at that interval: the work done so far by every
// worker (one op: an outer loop of burnA, burnB or burnD, a read of
// burnC), for the overhead benchmark (`scripts/bench record`).
// It runs until killed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var sink uint64

// ops counts the work done (see the package doc).
var ops uint64

// cgoWorker is burnE in cgo builds (cgo.go), else nil.
var cgoWorker func()

func goid() int64 {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := strings.Fields(string(b))
	id, _ := strconv.ParseInt(f[1], 10, 64)
	return id
}

//go:noinline
func burnA() {
	x := uint64(1)
	for {
		for i := 0; i < 1<<16; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		sink += x
		atomic.AddUint64(&ops, 1)
	}
}

// mixB is small enough to be inlined into burnB.
func mixB(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 29
	return x
}

//go:noinline
func burnB() {
	x := uint64(7)
	for {
		for i := 0; i < 1<<16; i++ {
			x = mixB(x + uint64(i))
		}
		sink += x
		atomic.AddUint64(&ops, 1)
	}
}

//go:noinline
func burnC() {
	fd, err := syscall.Open("/dev/zero", syscall.O_RDONLY, 0)
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 256<<10)
	for {
		if _, err := syscall.Read(fd, buf); err != nil {
			panic(err)
		}
		atomic.AddUint64(&ops, 1)
	}
}

// leafD is generic: Go's profile names it by its shape,
// main.leafD[go.shape.uint64].
//
//go:noinline
func leafD[T ~uint64](x T) T {
	for i := 0; i < 1<<12; i++ {
		x = x*2862933555777941757 + 3037000493
	}
	return x
}

//go:noinline
func burnD() {
	x := uint64(3)
	for {
		x = leafD(x)
		sink += x
		atomic.AddUint64(&ops, 1)
	}
}

func main() {
	workers := []struct {
		label string
		n     int
		f     func()
	}{{"a", 4, burnA}, {"b", 3, burnB}, {"c", 2, burnC}, {"d", 1, burnD}}
	if cgoWorker != nil {
		workers = append(workers, struct {
			label string
			n     int
			f     func()
		}{"e", 1, cgoWorker})
	}
	if gcEnabled() {
		workers = append(workers, struct {
			label string
			n     int
			f     func()
		}{"g", 6, churnG})
	}
	var mu sync.Mutex
	ids := map[string][]int64{}
	var wg sync.WaitGroup
	for _, w := range workers {
		for i := 0; i < w.n; i++ {
			wg.Add(1)
			go func(label string, f func()) {
				pprof.Do(context.Background(), pprof.Labels("work", label), func(context.Context) {
					mu.Lock()
					ids[label] = append(ids[label], goid())
					mu.Unlock()
					wg.Done()
					f()
				})
			}(w.label, w.f)
		}
	}
	wg.Wait()
	j, _ := json.Marshal(ids)
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "workers %s\nready %d\n", j, os.Getpid())
	out.Flush()

	secs := 4.0
	if s, err := strconv.ParseFloat(os.Getenv("CPUBURN_SECONDS"), 64); err == nil {
		secs = s
	}
	hz := 500
	if s, err := strconv.Atoi(os.Getenv("CPUBURN_HZ")); err == nil {
		hz = s
	}
	if every, err := time.ParseDuration(os.Getenv("CPUBURN_OPS_EVERY")); err == nil && every > 0 {
		go func() {
			// One write per line, beside the buffered writer's.
			for range time.Tick(every) {
				fmt.Fprintf(os.Stdout, "ops %d %d\n", atomic.LoadUint64(&ops), time.Now().UnixNano())
			}
		}()
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		n := 0
		for range usr1 {
			n++
			f, err := os.Create(fmt.Sprintf("%s.%d", os.Getenv("CPUBURN_PROFILE"), n))
			if err != nil {
				panic(err)
			}
			// Go's profiler keeps the first rate set: this one, not
			// StartCPUProfile's 100 Hz (it says so on stderr).
			runtime.SetCPUProfileRate(hz)
			if err := pprof.StartCPUProfile(f); err != nil {
				panic(err)
			}
			time.Sleep(time.Duration(secs * float64(time.Second)))
			pprof.StopCPUProfile()
			f.Close()
			fmt.Fprintf(out, "profiled %d\n", n)
			out.Flush()
		}
	}()
	select {}
}
