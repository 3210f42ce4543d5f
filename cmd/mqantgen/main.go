// Command mqantgen generates typed dispatch and typed clients for mqantgen
// modules: structs marked //mqant:module whose Handler_ methods clients call
// through the gate and whose //mqant:rpc methods other modules call, and
// typed senders for the push types marked //mqant:push Module/Name, and
// the module glue (GetType, OnInit, New, Register) in the module's own
// package, in <module>.glue.mqant.go beside it when -out points
// elsewhere. With
// -web it also writes a client SDK for game clients: TypeScript, plain
// JavaScript with .d.ts, and a route manifest with JSON Schemas; with
// -csharp a C# client SDK for Unity and Godot .NET games (one file per
// module and the SDK's runtime, in C# 7.2).
//
// Usage:
//
//	mqantgen [-out dir] [-web dir] [-csharp dir] [-go=false] [-check] [packages]
//
// Push types are found in the packages named and in the packages they
// import from the same Go module (a module's types package, such as
// chatapi), so naming the module packages is enough.
// From a //go:generate line the package defaults to the current directory.
// MQANTGEN_CHECK=1 go generate ./... checks every generated file without
// writing, which is how CI fails on stale generated code.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mqantgen/mqantgen/internal/gen"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mqantgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output directory (default: each module's own package directory)")
	check := fs.Bool("check", os.Getenv("MQANTGEN_CHECK") == "1", "write nothing; exit 1 when generated code is stale (also MQANTGEN_CHECK=1, for go generate)")
	verbose := fs.Bool("v", false, "print the files written")
	web := fs.String("web", "", "also write the client SDK (ts/, js/, manifest.json) into this directory")
	csharp := fs.String("csharp", "", "also write the C# client SDK (<Module>.cs, Runtime/) into this directory")
	goOut := fs.Bool("go", true, "write the Go code (-go=false with -web or -csharp writes only the client SDKs)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mqantgen [-out dir] [-web dir] [-csharp dir] [-go=false] [-check] [-v] [packages]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	patterns := fs.Args()
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	if !*goOut && *web == "" && *csharp == "" {
		fmt.Fprintln(stderr, "mqantgen: -go=false leaves nothing to write without -web or -csharp")
		return 2
	}
	outs, err := gen.Generate(gen.Options{Patterns: patterns, Out: *out, Web: *web, CSharp: *csharp, NoGo: !*goOut})
	if err != nil {
		var ge *gen.Error
		if errors.As(err, &ge) {
			for _, p := range ge.Problems {
				fmt.Fprintln(stderr, p)
			}
			fmt.Fprintf(stderr, "mqantgen: %d problem(s)\n", len(ge.Problems))
		} else {
			fmt.Fprintln(stderr, "mqantgen:", err)
		}
		return 1
	}
	written, err := gen.Write(outs, *check)
	if err != nil {
		fmt.Fprintln(stderr, "mqantgen:", err)
		return 1
	}
	if *verbose {
		for _, w := range written {
			fmt.Fprintln(stdout, "mqantgen: wrote", w)
		}
	}
	return 0
}
