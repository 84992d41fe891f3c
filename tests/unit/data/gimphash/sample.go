// A Go program for test_analysis's gimphash case: exported and unexported
// functions and methods, and a few standard packages.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

type Widget struct{ name string }

//go:noinline
func (w *Widget) Exported() string { return strings.ToUpper(w.name) }

//go:noinline
func (w *Widget) hidden() string { return strings.ToLower(w.name) }

//go:noinline
func ProbeExported(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

//go:noinline
func probeUnexported(s string) int { return len(s) }

func main() {
	w := &Widget{name: os.Args[0]}
	fmt.Println(w.Exported(), w.hidden(), ProbeExported(w.name), probeUnexported(w.name))
}
