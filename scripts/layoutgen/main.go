// Command layoutgen is the program scripts/gen-layouts and
// tests/layout_tables.rs compile with every installed Go toolchain. Its
// only job is to be an ordinary Go binary whose DWARF describes the runtime
// structures gopeek reads from a live process (runtime.g, gobuf, m, p,
// schedt, moduledata, ...): every Go binary links the whole scheduler, so a
// program that starts a goroutine and waits for it is enough. It prints one
// line and exits; nobody needs to run it.
//
// Build it with DWARF (no -ldflags=-w) for the tables:
//
//	GOTOOLCHAIN=local CGO_ENABLED=0 go build -o layoutgen .
//
// cgo.go adds a C call when CGO_ENABLED=1, so the same source also yields a
// cgo/externally linked variant for the tests.
package main

import (
	"fmt"
	"runtime"
	"sync"
)

func main() {
	var wg sync.WaitGroup
	results := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		results <- runtime.NumGoroutine()
	}()
	wg.Wait()
	fmt.Println("layoutgen", runtime.Version(), <-results, callC())
}
