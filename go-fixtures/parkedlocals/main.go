// Command parkedlocals is the oracle fixture of `gopeek print --goroutine`:
// goroutines parked (channel receive, select, mutex) in functions whose
// arguments and locals are of every kind (ints, strings, structs, slices,
// maps, pointers, interfaces, errors), each written with Go's own
// encoding/json and %#v to a file, so that what gopeek reads from outside
// the frame can be compared with what the function itself says.
//
//	parkedlocals -out FILE [-lifetime DURATION] [-spin]
//
// FILE gets one JSON object per line (via FILE.tmp and a rename):
//
//	{"goroutine":7,"func":"main.parkChan","name":"n","json":42,"jsonerr":"","gov":"42"}
//
// Some are optimized out at the park: Go's DWARF gives them no stack
// location there (cfg, a struct argument that arrived in registers; p on
// Go 1.21+); a local Go keeps only in a register between two uses
// (`total`) it leaves out of the DWARF altogether, so it is not recorded.
// Then "ready <pid>" on stdout; nothing changes after.
//
// With -spin, one more goroutine runs forever in main.spinRegs, a loop
// with no call in it, so that its arguments live in registers at its PC
// (the oracle of reading a running goroutine's innermost frame from its
// thread's registers); its values are recorded by the goroutine before
// the call.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Point is a small struct.
type Point struct{ X, Y int }

// Config is a struct with nested kinds.
type Config struct {
	Addr    string
	Retries int
	Tags    []string
	Origin  *Point
}

type record struct {
	Goroutine uint64          `json:"goroutine"`
	Func      string          `json:"func"`
	Name      string          `json:"name"`
	JSON      json.RawMessage `json:"json,omitempty"`
	JSONErr   string          `json:"jsonerr"`
	GoV       string          `json:"gov"`
}

var (
	mu      sync.Mutex
	records = make(chan []record)
	sinkV   int
)

func goid() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	id, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return id
}

type recorder struct {
	g    uint64
	fn   string
	recs []record
}

func newRec(fn string) *recorder { return &recorder{g: goid(), fn: fn} }

func (r *recorder) add(name string, v interface{}) {
	x := record{Goroutine: r.g, Func: r.fn, Name: name, GoV: fmt.Sprintf("%#v", v)}
	if b, err := json.Marshal(v); err != nil {
		x.JSONErr = err.Error()
	} else {
		x.JSON = b
	}
	r.recs = append(r.recs, x)
}

//go:noinline
func sink(v int) { sinkV += v }

// sinkS keeps waitFor's tag alive across its receive.
var sinkS string

//go:noinline
func use(v ...interface{}) { fmt.Fprint(io_discard{}, v...) }

type io_discard struct{}

func (io_discard) Write(p []byte) (int, error) { return len(p), nil }

// waitFor is small enough to be inlined into parkChan (by default; not
// with -gcflags=-l): its argument and local are then those of an inlined
// frame (a DW_TAG_inlined_subroutine), parked in its channel receive.
// parkChan records what they hold (tag is computed the same way).
func waitFor(ch chan int, label string) int {
	tag := label + "?"
	v := <-ch
	sinkS = tag
	return v + len(tag)
}

//go:noinline
func parkChan(n int, s string, p Point, xs []int, m map[string]int, ptr *Point, e error, any interface{}, ch chan int) {
	total := n * 2
	name := s + "!"
	r := newRec("main.parkChan")
	for _, v := range []struct {
		k string
		v interface{}
	}{{"n", n}, {"s", s}, {"p", p}, {"xs", xs}, {"m", m}, {"ptr", ptr}, {"e", e}, {"any", any}, {"name", name}} {
		r.add(v.k, v.v)
	}
	records <- r.recs
	inner := newRec("main.waitFor")
	inner.add("label", name)
	inner.add("tag", name+"?")
	records <- inner.recs
	got := waitFor(ch, name)
	use(n, s, p, xs, m, ptr, e, any, total, name, got)
}

//go:noinline
func parkSelect(cfg Config, limit int64, flag bool, f float64, a, b chan string) {
	label := fmt.Sprintf("%s/%d", cfg.Addr, limit)
	words := strings.Fields("alpha beta gamma")
	r := newRec("main.parkSelect")
	r.add("cfg", cfg)
	r.add("limit", limit)
	r.add("flag", flag)
	r.add("f", f)
	r.add("label", label)
	r.add("words", words)
	records <- r.recs
	var got string
	select {
	case got = <-a:
	case got = <-b:
	}
	use(cfg, limit, flag, f, label, words, got)
}

//go:noinline
func parkMutex(id uint16, err error, counts map[int]string, arr [3]int8) {
	seen := len(counts) + int(id)
	r := newRec("main.parkMutex")
	r.add("id", id)
	r.add("err", err)
	r.add("counts", counts)
	r.add("arr", arr)
	r.add("seen", seen)
	records <- r.recs
	mu.Lock()
	use(id, err, counts, arr, seen)
	mu.Unlock()
}

// spinStop is never set: spinRegs runs until the process exits.
var spinStop atomic.Bool

// spinRegs never returns: a loop without calls that reads n, k and name
// on every turn, so Go keeps them in registers there.
//
//go:noinline
func spinRegs(n int, k uint32, name string) int {
	total := 0
	for i := 0; !spinStop.Load(); i++ {
		total += n ^ int(k) + int(name[i%len(name)])
	}
	return total
}

func main() {
	out := flag.String("out", "", "oracle file (required)")
	spin := flag.Bool("spin", false, "also run main.spinRegs forever")
	lifetime := flag.Duration("lifetime", 0, "exit after this long (0: never)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "parkedlocals: -out FILE is required")
		os.Exit(2)
	}
	if *lifetime > 0 {
		time.AfterFunc(*lifetime, func() { os.Exit(0) })
	}
	mu.Lock()
	go parkChan(42, "hello", Point{3, -4}, []int{1, 2, 3}, map[string]int{"a": 1, "b": 2},
		&Point{7, 8}, errors.New("boom"), Point{1, 1}, make(chan int))
	go parkSelect(Config{Addr: ":8080", Retries: 3, Tags: []string{"x", "y"}, Origin: &Point{5, 6}},
		-99, true, 2.5, make(chan string), make(chan string))
	go parkMutex(513, fmt.Errorf("wrapped: %w", os.ErrNotExist), map[int]string{1: "one", 2: "two"}, [3]int8{-1, 0, 1})
	batches := 4
	if *spin {
		batches++
		go func() {
			r := newRec("main.spinRegs")
			r.add("n", 1234567)
			r.add("k", uint32(0xbeef))
			r.add("name", "spinner")
			records <- r.recs
			sink(spinRegs(1234567, 0xbeef, "spinner"))
		}()
	}
	var all []record
	for i := 0; i < batches; i++ {
		all = append(all, <-records...)
	}
	var buf strings.Builder
	for _, r := range all {
		b, err := json.Marshal(r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "parkedlocals:", err)
			os.Exit(1)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	// Let every goroutine reach its park (they sent their records just
	// before).
	time.Sleep(200 * time.Millisecond)
	if err := os.WriteFile(*out+".tmp", []byte(buf.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "parkedlocals:", err)
		os.Exit(1)
	}
	if err := os.Rename(*out+".tmp", *out); err != nil {
		fmt.Fprintln(os.Stderr, "parkedlocals:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	select {}
}
