// gimphash of a Go binary computed with Go's own pclntab reader
// (debug/gosym), to check trawl's reader and rules against: prints the kept
// names, one a line, then the digest.
package main

import (
	"crypto/sha256"
	"debug/elf"
	"debug/gosym"
	"debug/pe"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

func table(path string) []byte {
	if f, err := elf.Open(path); err == nil {
		data, err := f.Section(".gopclntab").Data()
		if err != nil {
			panic(err)
		}
		return data
	}
	f, err := pe.Open(path)
	if err != nil {
		panic(err)
	}
	var start, end *pe.Symbol
	for _, s := range f.Symbols {
		switch s.Name {
		case "runtime.pclntab":
			start = s
		case "runtime.epclntab":
			end = s
		}
	}
	data, err := f.Sections[start.SectionNumber-1].Data()
	if err != nil {
		panic(err)
	}
	return data[start.Value:end.Value]
}

func lowerFirst(s string) bool {
	for _, c := range s {
		if c >= 'a' && c <= 'z' {
			return true
		}
		if (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			return false
		}
	}
	return false
}

func keep(name string) (string, bool) {
	if strings.HasPrefix(name, "go.") || strings.HasPrefix(name, "type.") {
		return "", false
	}
	if i := strings.LastIndex(name, "vendor/"); i >= 0 {
		name = name[i+len("vendor/"):]
	}
	if strings.Contains(name, "internal/") {
		return "", false
	}
	for _, p := range []string{"runtime", "sync", "syscall", "type", "time", "unicode", "reflect", "strconv"} {
		if strings.HasPrefix(name, p) {
			return "", false
		}
	}
	rest := name[strings.LastIndex(name, "/")+1:]
	base := rest[strings.Index(rest, ".")+1:]
	if lowerFirst(base) {
		return "", false
	}
	if i := strings.Index(base, "."); i >= 0 && lowerFirst(base[i:]) {
		return "", false
	}
	return name, true
}

func main() {
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(table(os.Args[1]), 0))
	if err != nil {
		panic(err)
	}
	h := sha256.New()
	for _, f := range tab.Funcs {
		if name, ok := keep(f.Name); ok {
			fmt.Println(name)
			h.Write([]byte(name))
		}
	}
	fmt.Println(hex.EncodeToString(h.Sum(nil)))
}
