// heartbeat is the live target of gopeek's process tests (tests/process_attach.rs).
//
// Once set up it prints "ready <pid>", then every 20 ms one line to stdout:
//
//	beat=<n> usr1=<m>
//
// where n counts heartbeats and m counts SIGUSR1 signals received, so the test
// can tell that the target runs (n advances) and that no signal sent while it
// was held got lost (m). Besides the heartbeat it keeps a few goroutines busy
// (a CPU spinner that sleeps half the time, a goroutine locked to its own OS
// thread) so that there are several threads in different states to stop.
//
//	-churn           keep creating and destroying OS threads (a locked
//	                 goroutine that exits takes its thread with it)
//	-exit-after D    exit(0) after D
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	churn := flag.Bool("churn", false, "keep creating and destroying OS threads")
	exitAfter := flag.Duration("exit-after", 0, "exit after this long")
	flag.Parse()

	var usr1 atomic.Int64
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGUSR1)
	go func() {
		for range sigs {
			usr1.Add(1)
		}
	}()

	// Runs about half of the time, so threads are caught both running and parked.
	go func() {
		x := 0
		for {
			end := time.Now().Add(2 * time.Millisecond)
			for time.Now().Before(end) {
				x++
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	go func() {
		runtime.LockOSThread()
		for {
			time.Sleep(50 * time.Millisecond)
		}
	}()

	if *churn {
		go func() {
			for {
				done := make(chan struct{})
				go func() {
					runtime.LockOSThread()
					time.Sleep(200 * time.Microsecond)
					close(done)
					// Exiting while locked terminates the OS thread.
				}()
				<-done
			}
		}()
	}

	if *exitAfter > 0 {
		time.AfterFunc(*exitAfter, func() { os.Exit(0) })
	}

	fmt.Printf("ready %d\n", os.Getpid())
	for n := 1; ; n++ {
		fmt.Printf("beat=%d usr1=%d\n", n, usr1.Load())
		time.Sleep(20 * time.Millisecond)
	}
}
