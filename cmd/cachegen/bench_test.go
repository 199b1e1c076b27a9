package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cachegen/cachegen/internal/genbench"
)

// BenchmarkCLI200 runs the built command on a package of 200 repository
// interfaces, as go generate does: what a user waits for, process start,
// go list, type checking, rendering and writing included.
//
//	cold:  no generated files, no format cache (a first run on a machine)
//	fresh: no generated files yet (every file written), the format cache
//	       warm
//	again: the outputs are on disk and up to date (a rerun of go generate)
//	check: -check on up-to-date outputs (what CI runs)
//	edited: after an edit of a source file (go's build cache has nothing
//	        of the package), the outputs on disk: the everyday case
//
// cpu-ms/op is the processor time of the command and of the go commands it
// starts: less distorted by a loaded machine than the wall clock.
func BenchmarkCLI200(b *testing.B) {
	bin := cachegen(b)
	dir, err := os.MkdirTemp("testdata", "bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := genbench.WriteMany(dir, 200); err != nil {
		b.Fatal(err)
	}
	cache := b.TempDir()
	run := func(b *testing.B, args ...string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CACHEGEN_CACHE="+cache)
		if len(args) > 0 && args[0] == "cold" {
			cmd.Args = cmd.Args[:1]
			cmd.Env = append(os.Environ(), "CACHEGEN_CACHE=off")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("cachegen %v: %v\n%s", args, err, out)
		}
	}
	removeOutputs := func(b *testing.B) {
		outs, _ := filepath.Glob(filepath.Join(dir, "*_cache.go"))
		for _, o := range outs {
			if err := os.Remove(o); err != nil {
				b.Fatal(err)
			}
		}
	}
	run(b) // warm the build cache for go list's export data
	b.Run("cold", func(b *testing.B) {
		defer genbench.ReportCPU(b)()
		for b.Loop() {
			b.StopTimer()
			removeOutputs(b)
			b.StartTimer()
			run(b, "cold")
		}
	})
	b.Run("fresh", func(b *testing.B) {
		defer genbench.ReportCPU(b)()
		for b.Loop() {
			b.StopTimer()
			removeOutputs(b)
			b.StartTimer()
			run(b)
		}
		outs, _ := filepath.Glob(filepath.Join(dir, "*_cache.go"))
		if len(outs) != 200/genbench.PerFile {
			b.Fatalf("%d outputs, want %d", len(outs), 200/genbench.PerFile)
		}
	})
	run(b) // go list compiles the export data once with the outputs overlaid
	b.Run("again", func(b *testing.B) {
		defer genbench.ReportCPU(b)()
		for b.Loop() {
			run(b)
		}
	})
	b.Run("check", func(b *testing.B) {
		defer genbench.ReportCPU(b)()
		for b.Loop() {
			run(b, "-check")
		}
	})
	b.Run("edited", func(b *testing.B) { genbench.Edited(b, dir, func() { run(b) }) })
}
