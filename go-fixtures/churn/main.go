// Command churn is the target of the --nonblocking tests: its goroutines
// never stay put. Each worker loops forever through three parking places:
// a plain channel receive (parkA), a channel receive at the bottom of a
// recursion 40 to 240 frames deep with big frames, so that reaching it grows
// (moves) the stack and GC later shrinks (moves) it again (deep), and a
// two-way select (parkB). Driver goroutines wake the workers as fast as
// -rate allows, and a GC runs every -gc to shrink stacks.
//
//	churn [-n 400] [-drivers 2] [-rate 0] [-gc 20ms] [-stable 50]
//
// -rate is wakes per millisecond per driver (0: as fast as it can). -stable
// goroutines park once in stableWait and never move. It prints
// "ready <pid>" once every worker has parked at least once.
//
// The test reads the marker comments (// LINE:name) to learn the line of
// each parking place and call site.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

//go:noinline
func parkA(c chan int) int {
	return <-c // LINE:parkA
}

//go:noinline
func deep(n int, c chan int) int {
	var pad [48]int
	pad[n%48] = n
	if n == 0 {
		return <-c + pad[1] // LINE:deepLeaf
	}
	return deep(n-1, c) + pad[2] // LINE:deepCall
}

//go:noinline
func parkB(c, d chan int) int {
	select { // LINE:parkB
	case v := <-c:
		return v
	case v := <-d:
		return v
	}
}

//go:noinline
func worker(id int, c, d chan int, parked *sync.WaitGroup) {
	sum := 0
	first := true
	for i := id; ; i++ {
		if first {
			first = false
			parked.Done()
		}
		switch i % 3 {
		case 0:
			sum += parkA(c) // LINE:callA
		case 1:
			sum += deep(40+(i*7)%200, c) // LINE:callDeep
		default:
			sum += parkB(c, d) // LINE:callB
		}
		if sum == -1 {
			fmt.Println(sum)
		}
	}
}

//go:noinline
func stableWait(c chan int) {
	<-c // LINE:stable
}

func drive(chans []chan int, rate int, seed uint64) {
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Millisecond)
		tick = t.C
	}
	for {
		for k := 0; rate == 0 || k < rate; k++ {
			seed = seed*6364136223846793005 + 1442695040888963407
			c := chans[(seed>>33)%uint64(len(chans))]
			select {
			case c <- 1:
			default:
			}
			if rate == 0 && k == 64 {
				break
			}
		}
		if tick != nil {
			<-tick
		} else {
			runtime.Gosched()
		}
	}
}

func main() {
	n := flag.Int("n", 400, "workers")
	drivers := flag.Int("drivers", 2, "driver goroutines")
	rate := flag.Int("rate", 0, "wakes per ms per driver (0: unlimited)")
	gc := flag.Duration("gc", 20*time.Millisecond, "GC period (0: none)")
	stable := flag.Int("stable", 50, "goroutines parked forever")
	flag.Parse()

	never := make(chan int)
	for i := 0; i < *stable; i++ {
		go stableWait(never)
	}
	var parked sync.WaitGroup
	parked.Add(*n)
	chans := make([]chan int, *n)
	for i := range chans {
		chans[i] = make(chan int)
		go worker(i, chans[i], make(chan int), &parked) // LINE:goWorker
	}
	parked.Wait()
	for i := 0; i < *drivers; i++ {
		go drive(chans, *rate, uint64(i)+1)
	}
	if *gc > 0 {
		go func() {
			for {
				time.Sleep(*gc)
				runtime.GC()
			}
		}()
	}
	fmt.Printf("ready %d\n", os.Getpid())
	select {}
}
