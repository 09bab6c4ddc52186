// wallclock is the oracle of `gopeek record --wall`: goroutines that
// spend known shares of their wall time in known functions, under
// known pprof labels, and measure it themselves.
//
//	main.sleepLoop  role=sleep  time.Sleep(20ms) forever: all its time in time.Sleep
//	main.chanWait   role=chan   blocked in a channel receive forever
//	main.spin       role=spin   spins forever (on a CPU or waiting for one)
//	main.mixed      role=mixed  16 goroutines, each alternating: sleeps
//	                            ~30 ms in main.mixedSleep, then waits ~70 ms
//	                            on a timer's channel in main.mixedWait,
//	                            timing both phases itself. Each phase lasts
//	                            its mean × U(0.5, 1.5), from the goroutine's
//	                            own random source, so that goroutines a
//	                            stall of the machine woke together drift
//	                            apart again within a few cycles
//
// Protocol: prints `workers {"sleep":[goid],...}` (which goroutine ids
// play which role), then `ready <pid>`. On each SIGUSR1 it prints
// `phases SLEEP_NS WAIT_NS`: the wall time the mixed goroutines have
// spent in each phase so far, summed over them (completed phases only).
// It runs until killed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
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

var sleepNs, waitNs int64

func goid() int64 {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := strings.Fields(string(b))
	id, _ := strconv.ParseInt(f[1], 10, 64)
	return id
}

//go:noinline
func sleepLoop() {
	for {
		time.Sleep(20 * time.Millisecond)
	}
}

//go:noinline
func chanWait(ch chan int) {
	for v := range ch {
		sink += uint64(v)
	}
}

//go:noinline
func spin() {
	x := uint64(1)
	for {
		for i := 0; i < 1<<12; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		sink += x
	}
}

//go:noinline
func mixedSleep(d time.Duration) {
	time.Sleep(d)
}

//go:noinline
func mixedWait(d time.Duration) {
	<-time.After(d)
}

//go:noinline
func mixed(offset time.Duration, seed int64) {
	rnd := rand.New(rand.NewSource(seed))
	jitter := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * (0.5 + rnd.Float64()))
	}
	time.Sleep(offset)
	for {
		t0 := time.Now()
		mixedSleep(jitter(30 * time.Millisecond))
		t1 := time.Now()
		mixedWait(jitter(70 * time.Millisecond))
		t2 := time.Now()
		atomic.AddInt64(&sleepNs, int64(t1.Sub(t0)))
		atomic.AddInt64(&waitNs, int64(t2.Sub(t1)))
	}
}

func main() {
	ch := make(chan int)
	workers := []struct {
		role string
		n    int
		f    func(i int)
	}{
		{"sleep", 1, func(int) { sleepLoop() }},
		{"chan", 1, func(int) { chanWait(ch) }},
		{"spin", 1, func(int) { spin() }},
		{"mixed", 16, func(i int) { mixed(time.Duration(i)*100*time.Millisecond/16, int64(i)) }},
	}
	var mu sync.Mutex
	ids := map[string][]int64{}
	var wg sync.WaitGroup
	for _, w := range workers {
		for i := 0; i < w.n; i++ {
			wg.Add(1)
			go func(role string, i int, f func(int)) {
				pprof.Do(context.Background(), pprof.Labels("role", role), func(context.Context) {
					mu.Lock()
					ids[role] = append(ids[role], goid())
					mu.Unlock()
					wg.Done()
					f(i)
				})
			}(w.role, i, w.f)
		}
	}
	wg.Wait()
	j, _ := json.Marshal(ids)
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "workers %s\nready %d\n", j, os.Getpid())
	out.Flush()

	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	for range usr1 {
		fmt.Fprintf(out, "phases %d %d\n", atomic.LoadInt64(&sleepNs), atomic.LoadInt64(&waitNs))
		out.Flush()
	}
}
