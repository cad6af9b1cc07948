package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

// vramsealBinary is the command under test, built once by TestMain.
var vramsealBinary string

func TestMain(m *testing.M) {
	flag.Parse()
	raiseParallelism()
	dir, err := os.MkdirTemp("", "vramseal-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "make temp dir:", err)
		os.Exit(1)
	}
	vramsealBinary = filepath.Join(dir, "vramseal")
	if err := buildBinary(vramsealBinary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// subprocessesPerCore is how many parallel tests run per core unless
// -test.parallel says otherwise: most of this package's tests wait on a
// vramseal process of their own, so GOMAXPROCS at a time (go test's
// default) leaves the cores idle.
const subprocessesPerCore = 4

// raiseParallelism sets -test.parallel to subprocessesPerCore × GOMAXPROCS
// when the command line did not set it.
func raiseParallelism() {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(subprocessesPerCore*runtime.GOMAXPROCS(0))) // the flag exists: testing defines it
	}
}

// buildBinary builds this command into path, with the race detector when
// the tests have it, and the CGO_CFLAGS the tests were built with (make.sh's
// when none are set).
func buildBinary(path string) error {
	args := []string{"build", "-o", path}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = os.Environ()
	if os.Getenv("CGO_CFLAGS") == "" {
		cmd.Env = append(cmd.Env, "CGO_CFLAGS=-O2 -g -Wno-deprecated-declarations")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}
