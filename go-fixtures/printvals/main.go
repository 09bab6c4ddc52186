// Command printvals is the oracle fixture of `gopeek print`: globals of every
// kind Go has (and a goroutine holding locals), each written with Go's own
// encoding/json and %#v to a file, so that what gopeek reads from outside
// can be compared with what the program itself says.
//
//	printvals -out FILE [-lifetime DURATION]
//
// FILE gets one JSON object per line, written to FILE.tmp and renamed once
// complete:
//
//	{"name":"main.vInt","json":-42,"jsonerr":"","gov":"-42"}
//
// name is the global's Go name as gopeek takes it; json is json.Marshal's
// output (absent when Marshal failed: jsonerr says why, e.g. complex,
// chan and func values); gov is fmt.Sprintf("%#v"). Pointers print as
// addresses in %#v; they are this process's addresses, which gopeek reads
// too, so the text is compared as it is.
//
// Then "ready <pid>" on stdout, and the program idles forever (nothing
// below changes after the oracle is written).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
	"unsafe"
)

// Config is what a service's configuration global looks like.
type Config struct {
	Addr    string
	Retries int
	Tags    []string
	Limits  Limits
	Backup  *Limits
	secret  string
	Timeout time.Duration
}

// Limits is a nested struct.
type Limits struct {
	MaxConns int32
	Ratio    float64
}

// Base is embedded in Derived.
type Base struct {
	ID   int
	Name string
}

// Derived embeds Base by value and Limits by pointer.
type Derived struct {
	Base
	*Limits
	Extra uint16
}

// Node makes chains and cycles.
type Node struct {
	Val  int
	Next *Node
}

// Point is a small comparable struct.
type Point struct{ X, Y int }

// Level is a named integer.
type Level int

// Names is a named slice.
type Names []string

// Pair is a generic struct.
type Pair[K comparable, V any] struct {
	Key K
	Val V
}

// Box is a generic wrapper.
type Box[T any] struct{ V T }

// Celsius has a String method (an fmt.Stringer in an interface).
type Celsius float64

func (c Celsius) String() string { return fmt.Sprintf("%.1fC", float64(c)) }

// Base2 is embedded under a json tag.
type Base2 struct{ Q int }

// Tagged has encoding/json struct tags of every kind.
type Tagged struct {
	Name  string `json:"name"`
	Skip  int    `json:"-"`
	Empty string `json:"empty,omitempty"`
	Full  string `json:"full,omitempty"`
	Zero  Limits `json:"zero,omitzero"`
	Num   int    `json:",string"`
	Str   string `json:"str,string"`
	Dash  int    `json:"-,"`
	Inner Base   `json:"inner" yaml:"x"`
	Base2 `json:"b2"`
	Plain bool `yaml:"plain"`
}

// WithMethods holds types that marshal themselves (and print themselves
// with GoString in %#v): gopeek cannot run those methods.
type WithMethods struct {
	When time.Time
	Raw  json.RawMessage
}

// Big is larger than 128 bytes, so maps store it indirectly.
type Big [20]int64

var (
	vInt     int     = -42
	vInt8    int8    = -8
	vInt16   int16   = -1600
	vInt32   int32   = 1 << 30
	vInt64   int64   = math.MinInt64
	vUint    uint    = 42
	vUint8   uint8   = 255
	vUint16  uint16  = 65535
	vUint32  uint32  = 4000000000
	vUint64  uint64  = math.MaxUint64
	vUintptr uintptr = 0x1234

	vF32    float32    = 1.5
	vF32b   float32    = 0.1
	vF64    float64    = 3.14159
	vFBig   float64    = 1e21
	vFMid   float64    = 123456789.125
	vFSmall float64    = 1e-7
	vFInt   float64    = 2
	vFNeg   float64    = -0.5
	vFNaN   float64    = math.NaN()
	vC64    complex64  = 1 + 2i
	vC128   complex128 = -1.5 + 0.25i

	vTrue  = true
	vFalse = false

	vStr        = "hello, 世界"
	vStrEsc     = "quote\" <html>&\n\t\x01 \u2028"
	vStrEmpty   = ""
	vStrInvalid = "ok\xff\xfe"

	vArr    = [3]int{1, 2, 3}
	vArrStr = [2]string{"a", "b"}
	vArrPts = [2]Point{{1, 2}, {3, 4}}

	vSlice      = make([]int, 3, 10)
	vSliceNil   []int
	vSliceEmpty = []int{}
	vBytes      = []byte{1, 2, 255}
	vStrs       = []string{"x", "y"}
	vHuge       = make([]int64, 100000)
	vHugeStr    = strings.Repeat("ab", 50000)

	cfg = Config{
		Addr:    "localhost:8080",
		Retries: 3,
		Tags:    []string{"a", "b"},
		Limits:  Limits{MaxConns: 100, Ratio: 0.75},
		Backup:  &Limits{MaxConns: 5, Ratio: 1},
		secret:  "hunter2",
		Timeout: 1500 * time.Millisecond,
	}
	vDerived = Derived{Base: Base{ID: 7, Name: "seven"}, Limits: &Limits{MaxConns: 1}, Extra: 9}
	// Zero-size globals have no symbol or DWARF entry at all; zero-size
	// fields do.
	vZeroSized = struct {
		E struct{}
		A [0]int
		N int
	}{N: 1}
	vAnon = struct {
		A int
		B string
	}{1, "anon"}

	vPtrInt    = &vInt
	vPtrNil    *Config
	vPtrStruct = &Point{5, 6}
	vPtrPtr    = &vPtrInt
	vChain     = &Node{1, &Node{2, &Node{3, &Node{4, &Node{5, &Node{6, &Node{7, &Node{8, &Node{9, &Node{10, &Node{11, &Node{12, nil}}}}}}}}}}}}
	vCycle     = &Node{Val: 1}

	vMapNil   map[string]int
	vMap0     = map[string]int{}
	vMap1     = map[string]int{"one": 1}
	vMap8     = map[int]string{}
	vMap9     = map[int]string{}
	vMap1000  = map[int]int{}
	vMapPt    = map[string]Point{"p": {1, 2}, "q": {3, 4}}
	vMapBig   = map[string]Big{"b": {1, 2, 3}}
	vMapSlice = map[string][]int{"s": {1, 2}, "nil": nil}
	vMapF     = map[float64]bool{1.5: true, -2: false}
	vMapU8    = map[uint8]int8{3: -3, 200: 100}
	vMapPtKey = map[Point]string{{1, 2}: "a"}

	vAnyNil    interface{}
	vAnyInt    interface{} = 7
	vAnyStr    interface{} = "s"
	vAnyStruct interface{} = Point{1, 2}
	vAnyPtr    interface{} = &Point{3, 4}
	vAnyMap    interface{} = map[string]int{"k": 1}
	vAnySlice  interface{} = []string{"z"}
	vAnyLevel  interface{} = Level(4)
	vAnyF      interface{} = 2.5
	vErr       error       = errors.New("boom")
	vErrNil    error
	vErrWrap                = fmt.Errorf("wrap: %w", io.EOF)
	vStringer  fmt.Stringer = Celsius(21.5)
	vAnyAny                 = []interface{}{1, "two", nil, 3.5, true, Point{}}

	vChan       = make(chan int, 4)
	vChanNil    chan string
	vChanClosed = make(chan struct{})
	vChanUnbuf  = make(chan *Node)

	vFunc    = strings.ToUpper
	vFuncNil func()
	vUnsafe  = unsafe.Pointer(&vInt)
	vUnsafeN unsafe.Pointer

	vTagged = Tagged{Name: "t", Skip: 1, Full: "f", Num: 5, Str: "s", Dash: 2,
		Inner: Base{1, "x"}, Base2: Base2{Q: 3}, Plain: true}
	vMethods = WithMethods{When: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), Raw: json.RawMessage(`{"a":1}`)}
	vTime    = time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)

	vLevel  Level = 3
	vNames        = Names{"n1", "n2"}
	vPair         = Pair[string, int]{"k", 1}
	vPairPt       = Pair[Point, []string]{Point{1, 1}, []string{"v"}}
	vBox          = Box[[]int]{[]int{1}}
	vBoxPtr       = &Box[Level]{2}
)

type record struct {
	Name    string          `json:"name"`
	JSON    json.RawMessage `json:"json,omitempty"`
	JSONErr string          `json:"jsonerr"`
	GoV     string          `json:"gov"`
	// NoText: %#v calls a GoString method here, which gopeek cannot run.
	NoText bool `json:"notext,omitempty"`
}

func main() {
	out := flag.String("out", "", "oracle file (required)")
	lifetime := flag.Duration("lifetime", 0, "exit after this long (0: never)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "printvals: -out FILE is required")
		os.Exit(2)
	}
	if *lifetime > 0 {
		time.AfterFunc(*lifetime, func() { os.Exit(0) })
	}
	setup()
	var recs []record
	rec := func(name string, v interface{}) {
		r := record{Name: name, GoV: fmt.Sprintf("%#v", v)}
		if b, err := json.Marshal(v); err != nil {
			r.JSONErr = err.Error()
		} else {
			r.JSON = b
		}
		recs = append(recs, r)
	}
	rec("main.vInt", vInt)
	rec("main.vInt8", vInt8)
	rec("main.vInt16", vInt16)
	rec("main.vInt32", vInt32)
	rec("main.vInt64", vInt64)
	rec("main.vUint", vUint)
	rec("main.vUint8", vUint8)
	rec("main.vUint16", vUint16)
	rec("main.vUint32", vUint32)
	rec("main.vUint64", vUint64)
	rec("main.vUintptr", vUintptr)
	rec("main.vF32", vF32)
	rec("main.vF32b", vF32b)
	rec("main.vF64", vF64)
	rec("main.vFBig", vFBig)
	rec("main.vFMid", vFMid)
	rec("main.vFSmall", vFSmall)
	rec("main.vFInt", vFInt)
	rec("main.vFNeg", vFNeg)
	rec("main.vFNaN", vFNaN)
	rec("main.vC64", vC64)
	rec("main.vC128", vC128)
	rec("main.vTrue", vTrue)
	rec("main.vFalse", vFalse)
	rec("main.vStr", vStr)
	rec("main.vStrEsc", vStrEsc)
	rec("main.vStrEmpty", vStrEmpty)
	rec("main.vStrInvalid", vStrInvalid)
	rec("main.vArr", vArr)
	rec("main.vArrStr", vArrStr)
	rec("main.vArrPts", vArrPts)
	rec("main.vSlice", vSlice)
	rec("main.vSliceNil", vSliceNil)
	rec("main.vSliceEmpty", vSliceEmpty)
	rec("main.vBytes", vBytes)
	rec("main.vStrs", vStrs)
	rec("main.cfg", cfg)
	rec("main.vDerived", vDerived)
	rec("main.vZeroSized", vZeroSized)
	rec("main.vAnon", vAnon)
	rec("main.vPtrInt", vPtrInt)
	rec("main.vPtrNil", vPtrNil)
	rec("main.vPtrStruct", vPtrStruct)
	rec("main.vPtrPtr", vPtrPtr)
	rec("main.vChain", vChain)
	rec("main.vMapNil", vMapNil)
	rec("main.vMap0", vMap0)
	rec("main.vMap1", vMap1)
	rec("main.vMap8", vMap8)
	rec("main.vMap9", vMap9)
	rec("main.vMap1000", vMap1000)
	rec("main.vMapPt", vMapPt)
	rec("main.vMapBig", vMapBig)
	rec("main.vMapSlice", vMapSlice)
	rec("main.vMapF", vMapF)
	rec("main.vMapU8", vMapU8)
	rec("main.vMapPtKey", vMapPtKey)
	rec("main.vAnyNil", vAnyNil)
	rec("main.vAnyInt", vAnyInt)
	rec("main.vAnyStr", vAnyStr)
	rec("main.vAnyStruct", vAnyStruct)
	rec("main.vAnyPtr", vAnyPtr)
	rec("main.vAnyMap", vAnyMap)
	rec("main.vAnySlice", vAnySlice)
	rec("main.vAnyLevel", vAnyLevel)
	rec("main.vAnyF", vAnyF)
	rec("main.vErr", vErr)
	rec("main.vErrNil", vErrNil)
	rec("main.vErrWrap", vErrWrap)
	rec("main.vStringer", vStringer)
	rec("main.vAnyAny", vAnyAny)
	rec("main.vChan", vChan)
	rec("main.vChanNil", vChanNil)
	rec("main.vChanClosed", vChanClosed)
	rec("main.vChanUnbuf", vChanUnbuf)
	rec("main.vFunc", vFunc)
	rec("main.vFuncNil", vFuncNil)
	rec("main.vUnsafe", vUnsafe)
	rec("main.vUnsafeN", vUnsafeN)
	rec("main.vLevel", vLevel)
	rec("main.vNames", vNames)
	rec("main.vPair", vPair)
	rec("main.vPairPt", vPairPt)
	rec("main.vBox", vBox)
	rec("main.vBoxPtr", vBoxPtr)
	rec("main.vTagged", vTagged)
	rec("main.vMethods", vMethods)
	recs[len(recs)-1].NoText = true
	rec("main.vTime", vTime)
	recs[len(recs)-1].NoText = true
	// Not compared value for value (cut by the limits, or a cycle), but
	// kept alive and named here so that the linker keeps them.
	rec("main.vHuge", len(vHuge))
	rec("main.vHugeStr", len(vHugeStr))
	rec("main.vCycle", vCycle)

	var buf strings.Builder
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "printvals:", err)
			os.Exit(1)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(*out+".tmp", []byte(buf.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "printvals:", err)
		os.Exit(1)
	}
	if err := os.Rename(*out+".tmp", *out); err != nil {
		fmt.Fprintln(os.Stderr, "printvals:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	select {}
}

// setup fills what a composite literal cannot: sized maps, a closed and a
// half-full channel, a cycle.
func setup() {
	for i := 0; i < 3; i++ {
		vSlice[i] = (i + 1) * 10
	}
	for i := 0; i < 8; i++ {
		vMap8[i] = fmt.Sprint("v", i)
	}
	for i := 0; i < 9; i++ {
		vMap9[i*7] = fmt.Sprint("w", i)
	}
	for i := 0; i < 1000; i++ {
		vMap1000[i*3] = i
	}
	// Deletions leave tombstones/empty slots in both map forms.
	for i := 0; i < 1000; i += 10 {
		delete(vMap1000, i*3)
	}
	vChan <- 1
	vChan <- 2
	close(vChanClosed)
	vCycle.Next = vCycle
	for i := range vHuge {
		vHuge[i] = int64(i)
	}
}
