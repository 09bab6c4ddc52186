// Command loadgen is the closed-loop HTTP load generator of the impact
// benchmark (scripts/bench-impact): it measures what a Go service's clients
// feel while something inspects the service.
//
//	loadgen run -addr 127.0.0.1:PORT [-path /] [-clients 8] [-idle N]
//	            [-duration 10m] [-timeout 10s] -out LAT
//	loadgen report -lat LAT -windows WINDOWS
//
// run opens N idle keep-alive connections first (each sends one request,
// reads the response and then stays open, silent, so the server keeps one
// goroutine per connection), prints "ready <pid> idle=N" on stdout, then
// runs K clients, each sending GET requests back to back over its own
// keep-alive connection (a closed loop: the next request leaves when the
// last response is in). Every request is recorded: its start (Unix ns) and
// latency (ns), and whether it failed (a dial, write or read error, a
// timeout, or a status other than 200); a client whose connection failed
// dials again. It stops at -duration (a hard bound, at most 1 h) or on
// SIGINT/SIGTERM, writes LAT (16 bytes a request, little-endian: start ns,
// latency ns with the top bit set on failure) and prints one summary line:
// "done requests=R failed=F idle_open=I idle_failed=J".
// A watchdog exits with status 3 if stopping takes more than 30 s longer.
//
// report reads LAT and WINDOWS (lines "NAME START_NS END_NS", Unix ns) and
// prints, per window, the requests that started in [START, END): a TSV line
// "NAME requests failed p50_us p99_us p999_us p9999_us max_us" (exact
// percentiles: every latency is kept; failed requests are counted, not
// ranked).
//
// The target must be a loopback address (127.0.0.0/8, ::1 or "localhost"):
// anything else is refused with exit status 2 before a packet is sent.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const failBit = uint64(1) << 63

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "run":
		run(os.Args[2:])
	case "report":
		report(os.Args[2:])
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadgen run -addr 127.0.0.1:PORT -out LAT [-path /] [-clients K] [-idle N] [-duration D] [-timeout T]\n       loadgen report -lat LAT -windows FILE")
	os.Exit(2)
}

func die(code int, format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
	os.Exit(code)
}

// loopbackAddr checks that addr is HOST:PORT with a loopback HOST and
// returns it with "localhost" replaced by 127.0.0.1 (no name lookup).
func loopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%q is not a loopback address (127.0.0.0/8, ::1 or localhost)", host)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// client is one keep-alive HTTP/1.1 connection.
type client struct {
	addr, req string
	timeout   time.Duration
	conn      net.Conn
	br        *bufio.Reader
}

// do sends one request and reads the whole response; on any error the
// connection is closed (the next call dials again).
func (c *client) do() error {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return err
		}
		c.conn = conn
		c.br = bufio.NewReader(conn)
	}
	err := c.roundTrip()
	if err != nil {
		c.conn.Close()
		c.conn = nil
	}
	return err
}

func (c *client) roundTrip() error {
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(c.conn, c.req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.Close {
		return errors.New("server closed the connection")
	}
	return nil
}

func run(args []string) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	addr := fs.String("addr", "", "target HOST:PORT (loopback only)")
	path := fs.String("path", "/", "request path")
	clients := fs.Int("clients", 8, "concurrent closed-loop clients")
	idle := fs.Int("idle", 0, "idle keep-alive connections held open")
	duration := fs.Duration("duration", 10*time.Minute, "hard bound on the run (at most 1h)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout (a request slower than this fails)")
	out := fs.String("out", "", "latency file to write")
	fs.Parse(args)
	target, err := loopbackAddr(*addr)
	if err != nil {
		die(2, "refusing -addr %q: %v", *addr, err)
	}
	if *out == "" || *clients < 1 || *clients > 10000 || *idle < 0 || *idle > 1000000 ||
		*duration <= 0 || *duration > time.Hour || *timeout <= 0 || !strings.HasPrefix(*path, "/") {
		usage()
	}
	host := target
	req := "GET " + *path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: gopeek-loadgen\r\n\r\n"
	start := time.Now()
	deadline := start.Add(*duration)
	go func() {
		time.Sleep(time.Until(deadline) + 30*time.Second)
		fmt.Fprintln(os.Stderr, "loadgen: watchdog: still running 30 s after -duration; exiting")
		os.Exit(3)
	}()

	var stop int32
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-time.After(time.Until(deadline)):
		}
		atomic.StoreInt32(&stop, 1)
		close(stopped)
	}()

	// Idle connections: dialled 64 at a time (the listen backlog is finite).
	idleConns := make([]*client, *idle)
	var idleFailed int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range idleConns {
		if atomic.LoadInt32(&stop) != 0 {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c := &client{addr: target, req: req, timeout: *timeout}
			if err := c.do(); err != nil {
				atomic.AddInt64(&idleFailed, 1)
				return
			}
			c.conn.SetDeadline(time.Time{})
			idleConns[i] = c
		}(i)
	}
	wg.Wait()
	idleOpen := 0
	for _, c := range idleConns {
		if c != nil {
			idleOpen++
		}
	}
	fmt.Printf("ready %d idle=%d idle_failed=%d\n", os.Getpid(), idleOpen, idleFailed)

	recs := make([][]uint64, *clients)
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := &client{addr: target, req: req, timeout: *timeout}
			buf := make([]uint64, 0, 1<<16)
			for atomic.LoadInt32(&stop) == 0 {
				t0 := time.Now()
				err := c.do()
				lat := uint64(time.Since(t0))
				if err != nil {
					lat |= failBit
				}
				buf = append(buf, uint64(t0.UnixNano()), lat)
				if err != nil && atomic.LoadInt32(&stop) == 0 {
					// Do not spin on a refused dial.
					time.Sleep(10 * time.Millisecond)
				}
			}
			if c.conn != nil {
				c.conn.Close()
			}
			recs[i] = buf
		}(i)
	}
	<-stopped
	wg.Wait()
	// Idle connections that the server closed meanwhile: a connection is
	// still open when a read finds nothing (deadline passes) rather than EOF.
	// The first few that are not are named on stderr, with the reason.
	idleAlive, idleGone := 0, 0
	one := make([]byte, 1)
	for i, c := range idleConns {
		if c == nil {
			continue
		}
		c.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		n, err := c.conn.Read(one)
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() {
			idleAlive++
		} else {
			idleGone++
			if idleGone <= 5 {
				fmt.Fprintf(os.Stderr, "loadgen: idle connection %d (%s) not open at the end: read %d bytes, %v\n", i, c.conn.LocalAddr(), n, err)
			}
		}
		c.conn.Close()
	}

	f, err := os.Create(*out)
	if err != nil {
		die(1, "%v", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var n, failed int
	var b [16]byte
	for _, buf := range recs {
		for j := 0; j+1 < len(buf); j += 2 {
			binary.LittleEndian.PutUint64(b[0:], buf[j])
			binary.LittleEndian.PutUint64(b[8:], buf[j+1])
			w.Write(b[:])
			n++
			if buf[j+1]&failBit != 0 {
				failed++
			}
		}
	}
	if err := w.Flush(); err != nil {
		die(1, "%v", err)
	}
	if err := f.Close(); err != nil {
		die(1, "%v", err)
	}
	fmt.Printf("done requests=%d failed=%d idle_open=%d idle_failed=%d idle_alive=%d\n", n, failed, idleOpen, idleFailed, idleAlive)
}

func report(args []string) {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	latPath := fs.String("lat", "", "latency file written by run")
	winPath := fs.String("windows", "", "windows: lines NAME START_NS END_NS")
	fs.Parse(args)
	if *latPath == "" || *winPath == "" {
		usage()
	}
	data, err := os.ReadFile(*latPath)
	if err != nil {
		die(1, "%v", err)
	}
	if len(data)%16 != 0 {
		die(1, "%s: %d bytes is not a whole number of 16-byte records", *latPath, len(data))
	}
	wdata, err := os.ReadFile(*winPath)
	if err != nil {
		die(1, "%v", err)
	}
	for ln, line := range strings.Split(string(wdata), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 {
			die(1, "%s:%d: want NAME START_NS END_NS", *winPath, ln+1)
		}
		from, err1 := strconv.ParseUint(f[1], 10, 64)
		to, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || to < from {
			die(1, "%s:%d: bad times", *winPath, ln+1)
		}
		var lats []uint64
		failed := 0
		for i := 0; i+16 <= len(data); i += 16 {
			t := binary.LittleEndian.Uint64(data[i:])
			if t < from || t >= to {
				continue
			}
			l := binary.LittleEndian.Uint64(data[i+8:])
			if l&failBit != 0 {
				failed++
				continue
			}
			lats = append(lats, l)
		}
		sort.Slice(lats, func(a, b int) bool { return lats[a] < lats[b] })
		fmt.Printf("%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", f[0], len(lats)+failed, failed,
			pct(lats, 0.50), pct(lats, 0.99), pct(lats, 0.999), pct(lats, 0.9999), pct(lats, 1))
	}
}

// pct is the q-quantile of the sorted latencies (nearest rank), in
// microseconds with one decimal; "-" when there are none.
func pct(sorted []uint64, q float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	r := int(math.Ceil(q*float64(len(sorted)))) - 1
	if r < 0 {
		r = 0
	}
	if r >= len(sorted) {
		r = len(sorted) - 1
	}
	return strconv.FormatFloat(float64(sorted[r])/1000, 'f', 1, 64)
}
