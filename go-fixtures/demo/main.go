// Command demo is a small, realistic "service" for gopeek's README demo: an
// HTTP server on 127.0.0.1:0 whose handlers hand jobs to a pool of 4 workers,
// a traffic generator that calls it, a metrics ticker, and a handful of
// goroutines leaked by a handler that gives up on a slow backend.
//
//	demo [-leaks N]
//
// Once everything is up it prints "ready <pid>" on stdout (the address goes
// to stderr) and runs until killed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type job struct {
	n      int
	result chan int
}

type stats struct {
	mu        sync.Mutex
	processed int
	requests  int64
}

type server struct {
	jobs  chan job
	stats *stats
}

// worker handles jobs forever. Most of the time it waits in chan receive.
func (s *server) worker(id int) {
	for j := range s.jobs {
		r := fib(j.n % 25)
		s.stats.mu.Lock()
		s.stats.processed++
		s.stats.mu.Unlock()
		j.result <- r
	}
}

func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

// handleWork sends a job to the pool and waits for the answer.
func (s *server) handleWork(w http.ResponseWriter, r *http.Request) {
	atomic.AddInt64(&s.stats.requests, 1)
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	j := job{n: n, result: make(chan int, 1)}
	select {
	case s.jobs <- j:
	case <-r.Context().Done():
		return
	}
	fmt.Fprintf(w, "fib(%d) = %d\n", n%25, <-j.result)
}

// handleSlow queries a slow backend and gives up after a timeout. The
// goroutine it started then blocks forever sending its late answer on an
// unbuffered channel that nobody reads any more: the classic goroutine leak.
func (s *server) handleSlow(w http.ResponseWriter, r *http.Request) {
	atomic.AddInt64(&s.stats.requests, 1)
	answer := make(chan string) // should have been buffered
	go queryBackend(answer)
	select {
	case a := <-answer:
		fmt.Fprintln(w, a)
	case <-time.After(20 * time.Millisecond):
		http.Error(w, "backend timeout", http.StatusGatewayTimeout)
	}
}

func queryBackend(answer chan<- string) {
	time.Sleep(100 * time.Millisecond) // the backend is slow...
	answer <- "ok"                     // ...and nobody is listening any more
}

// reportMetrics logs a line every 10 seconds.
func (s *server) reportMetrics(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.stats.mu.Lock()
			p := s.stats.processed
			s.stats.mu.Unlock()
			log.Printf("metrics: %d requests, %d jobs", atomic.LoadInt64(&s.stats.requests), p)
		case <-ctx.Done():
			return
		}
	}
}

// generateTraffic calls /work every 250ms with a keep-alive client.
func generateTraffic(base string) {
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; ; i++ {
		resp, err := client.Get(base + "/work?n=" + strconv.Itoa(i))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func main() {
	leaks := flag.Int("leaks", 5, "number of requests to /slow made at startup (each leaks a goroutine)")
	flag.Parse()
	log.SetFlags(log.Ltime)

	s := &server{jobs: make(chan job), stats: &stats{}}
	for i := 0; i < 4; i++ {
		go s.worker(i)
	}
	go s.reportMetrics(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("/work", s.handleWork)
	mux.HandleFunc("/slow", s.handleSlow)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	base := "http://" + ln.Addr().String()

	var wg sync.WaitGroup
	for i := 0; i < *leaks; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(base + "/slow")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // let the leaked goroutines get stuck
	go generateTraffic(base)

	fmt.Fprintf(os.Stderr, "demo: listening on %s\n", base)
	fmt.Printf("ready %d\n", os.Getpid())
	select {}
}
