package driver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gpucheckSteps are the steps gpucheck.sh reports, in order.
var gpucheckSteps = []string{"contract", "device", "kernel", "copy", "hash", "devices", "run", "audit", "share"}

// gpucheckBin makes a BIN_DIR for gpucheck.sh: this test binary as
// cuda.test and, with vramseal true, bin/vramseal (built once per run).
func gpucheckBin(t *testing.T, vramseal bool) string {
	t.Helper()
	bin := t.TempDir()
	self, err := os.Executable()
	require.NoError(t, err)
	require.NoError(t, os.Symlink(self, filepath.Join(bin, "cuda.test")))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "gpucheck.commit"), []byte("0123abcd (dry run)\n"), 0o644))
	if vramseal {
		require.NoError(t, os.Symlink(builtVramseal(t), filepath.Join(bin, "vramseal")))
	}
	return bin
}

// vramsealBuild is bin/vramseal, built by the first test that needs it into
// the package's scratch directory.
var vramsealBuild struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

// builtVramseal returns the path of a vramseal built with go, building it
// on the first call.
func builtVramseal(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build bin/vramseal: %v", err)
	}
	b := &vramsealBuild
	b.once.Do(func() {
		if scratchDir, b.err = os.MkdirTemp("", "vramseal-driver-test"); b.err != nil {
			return
		}
		b.path = filepath.Join(scratchDir, "vramseal")
		build := exec.Command(goTool, "build", "-o", b.path, "../../cmd/vramseal")
		build.Env = append(os.Environ(), "CGO_CFLAGS=-O2 -g -Wno-deprecated-declarations")
		b.out, b.err = build.CombinedOutput()
	})
	require.NoError(t, b.err, "building vramseal:\n%s", b.out)
	return b.path
}

// runGPUCheck runs gpucheck.sh over the fake libcuda in lib with bin as its
// BIN_DIR and extra environment, and returns its stdout, its $OUT and its
// exit status.
func runGPUCheck(t *testing.T, lib, bin string, env ...string) (string, string, int) {
	t.Helper()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang, not a speed, bound
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "gpucheck.sh"), bin)
	cmd.Env = append(os.Environ(), append([]string{"LD_LIBRARY_PATH=" + lib, fakeCUDAEnv + "=1", "OUT=" + out,
		"GPUCHECK_MODEL_BYTES=16777216", "GPUCHECK_RUN_SECONDS=3", "GPUCHECK_SHARE_BYTES=8388613", "PATH=" + os.Getenv("PATH")}, env...)...)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "gpucheck.sh ended within its deadline:\n%s", stdout.String())
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return stdout.String(), out, code
}

// gpucheckRows returns each step's row of gpucheck.sh's summary: result
// and figure by step name.
func gpucheckRows(t *testing.T, stdout string) map[string][2]string {
	t.Helper()
	rows := map[string][2]string{}
	row := regexp.MustCompile(`(?m)^(\w+) +(PASS|FAIL|SKIP) +\d+  (.*)$`)
	for _, m := range row.FindAllStringSubmatch(stdout, -1) {
		rows[m[1]] = [2]string{m[2], m[3]}
	}
	for _, name := range gpucheckSteps {
		require.Contains(t, rows, name, "step %s has a row:\n%s", name, stdout)
	}
	return rows
}

// TestGPUCheckDryRun runs cuda/gpucheck.sh end to end over the fake
// libcuda, as it would run on a GPU machine: every CUDA step passes, the
// NVML step says it skipped, the summary fits 4,000 characters, the time
// the steps may take fits the 300 s budget, and the full logs are in $OUT.
func TestGPUCheckDryRun(t *testing.T) {
	t.Parallel()
	lib := buildFakeLibcuda(t)
	stdout, out, code := runGPUCheck(t, lib, gpucheckBin(t, true))
	t.Logf("gpucheck.sh's stdout:\n%s", stdout)
	assert.Zero(t, code, "gpucheck.sh passed")
	assert.LessOrEqual(t, len(stdout), 4000, "stdout fits the summary's 4,000 characters")

	rows := gpucheckRows(t, stdout)
	for _, name := range gpucheckSteps {
		want := "PASS"
		if name == "devices" {
			want = "SKIP"
		}
		assert.Equal(t, want, rows[name][0], "step %s: %s", name, rows[name][1])
	}
	assert.Equal(t, "skipped: no NVML (libnvidia-ml.so.1)", rows["devices"][1])
	assert.Contains(t, rows["kernel"][1], `image="sm_90 cubin"`)
	assert.Contains(t, rows["kernel"][1], "local_bytes=0")
	for _, figure := range []string{"shard ", "device ", "DtoH+SHA-256 all cores "} {
		assert.Contains(t, rows["hash"][1], figure)
	}
	assert.NotContains(t, rows["hash"][1]+rows["copy"][1], "?", "every rate was measured")
	assert.Regexp(t, `chunk size 64KiB: scrub passes [1-9]\d*, the last at \d`, rows["run"][1])
	assert.Regexp(t, `^8388613-byte shard, second process: model.bin ok  8\.0 MiB cuda-vmm-fd sha256 match; write tried below \| `+
		`model.bin ok  write through the read-only mapping refused: .*CUDA_ERROR_ILLEGAL_ADDRESS`, rows["share"][1])
	assert.Contains(t, stdout, "commit:  0123abcd (dry run)")
	assert.Contains(t, stdout, "the stand-in libcuda answered, not a GPU")

	capped := regexp.MustCompile(`budget 300s; steps capped at (\d+)s`).FindStringSubmatch(stdout)
	require.NotNil(t, capped, "the time plan is printed:\n%s", stdout)
	plan, err := strconv.Atoi(capped[1])
	require.NoError(t, err)
	assert.LessOrEqual(t, plan, 300, "the steps' caps fit the default budget")
	used := regexp.MustCompile(`used (\d+)s of 300s`).FindStringSubmatch(stdout)
	require.NotNil(t, used, "the time used is printed:\n%s", stdout)
	spent, err := strconv.Atoi(used[1])
	require.NoError(t, err)
	assert.LessOrEqual(t, spent, plan)

	summary, err := os.ReadFile(filepath.Join(out, "summary.txt"))
	require.NoError(t, err)
	assert.Equal(t, stdout, string(summary), "$OUT keeps the summary")
	for _, name := range gpucheckSteps {
		assert.FileExists(t, filepath.Join(out, name+".log"), "$OUT keeps step %s's log", name)
	}
	checkDriverTestsRan(t, out)
}

// checkDriverTestsRan checks, in the full logs gpucheck.sh kept in out,
// that every test that needs a driver ran over the stand-in and passed:
// the contract, plain and shareable, and each on-device test. The dry run
// is where they run on a machine without a GPU.
func checkDriverTestsRan(t *testing.T, out string) {
	t.Helper()
	var logs strings.Builder
	for _, name := range []string{"contract.log", "device.log"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err, "$OUT keeps %s", name)
		logs.Write(b)
	}
	report := logs.String()
	assert.NotContains(t, report, "--- SKIP", "every driver test ran:\n%s", report)
	assert.NotContains(t, report, "--- FAIL", report)
	for _, name := range []string{
		"TestDriverContract", "TestDriverContractShareable", "TestDriverContractShareable/share",
		"TestDriverOnDeviceRejectsMissingIndex", "TestDriverOnDeviceErrorsCarryNoAddress",
		"TestDriverOnDeviceCopiesFromAnyThread", "TestDriverOnDeviceCloseFreesEverything",
		"TestDriverOnDeviceHashesWithTheKernel", "TestDriverOnDeviceHashesSpansInOneLaunch",
		"TestDriverOnDeviceFallsBackWhenTheKernelDoesNotLoad",
		"TestDriverOnDeviceLaunchFailure", "TestDriverOnDeviceHashesLikeTheHost",
		"TestDriverOnDeviceReservesLaunchBuffersAtOpen", "TestDriverOnDeviceSplitsLaunchesAtTheirCapacity",
		"TestDriverOnDeviceFullDeviceHashesOnTheHost", "TestDriverOnDeviceSealsAndVerifiesAModelTheSizeOfTheDevice",
		"TestDriverOnDeviceScrubsAThousandShardsInALaunch", "TestDriverOnDeviceLoadsTheMatchingKernelImage",
		"TestDriverOnDeviceFallsBackToThePTX", "TestDriverOnDeviceUUIDIsTheInstancesOwn",
		"TestDriverOnDevicePointerReachesTheBytes", "TestDriverOnDeviceLeasePointerReachesTheSealedBytes",
		"TestDriverOnDeviceImportsASharedAllocationByUUID",
	} {
		assert.Contains(t, report, "--- PASS: "+name+" ", "%s ran over the stand-in and passed", name)
	}
}

// TestGPUCheckRunsEveryStepAfterFailures runs gpucheck.sh over a fake
// libcuda whose every kernel launch fails: the steps that hash fail, and
// every step after them still runs, and the script exits 1.
func TestGPUCheckRunsEveryStepAfterFailures(t *testing.T) {
	t.Parallel()
	lib := buildFakeLibcuda(t)
	stdout, _, code := runGPUCheck(t, lib, gpucheckBin(t, true), launchErrorEnv+"=719")
	t.Logf("gpucheck.sh's stdout:\n%s", stdout)
	assert.Equal(t, 1, code, "gpucheck.sh failed")
	rows := gpucheckRows(t, stdout)
	for name, want := range map[string]string{
		"contract": "FAIL", "device": "FAIL", "kernel": "PASS", "copy": "PASS", "hash": "FAIL", "devices": "SKIP", "run": "FAIL",
		"share": "FAIL",
	} {
		assert.Equal(t, want, rows[name][0], "step %s: %s", name, rows[name][1])
	}
	assert.Contains(t, rows["device"][1], "TestDriverOnDeviceHashesWithTheKernel", "the failed tests are named")
	assert.Regexp(t, `gpucheck: FAIL \(\d+ of 9 steps failed`, stdout)
}

// TestGPUCheckKeepsToItsBudget runs gpucheck.sh with a budget far too
// short for its steps. Where the budget runs out depends on the machine's
// load, so the test holds wherever it does: the steps before pass (devices
// skips: no NVML), the one it runs out in times out or is the first not run,
// every timed step after says it is out of time, and the script reports FAIL
// and exits 1 within the budget and its kill grace, since a check cut short
// is not a pass.
func TestGPUCheckKeepsToItsBudget(t *testing.T) {
	lib, bin := buildFakeLibcuda(t), gpucheckBin(t, true)
	started := time.Now()
	stdout, _, code := runGPUCheck(t, lib, bin, "GPUCHECK_TIMEOUT=8")
	t.Logf("gpucheck.sh's stdout:\n%s", stdout)
	assert.Less(t, time.Since(started), 20*time.Second, "8 s of budget, a few of kill grace")
	assert.Equal(t, 1, code, "gpucheck.sh failed")
	assert.Regexp(t, `gpucheck: FAIL \(\d+ of 9 steps failed, [1-9]\d* not run for want of time`, stdout)
	rows := gpucheckRows(t, stdout)
	outOfTime := [2]string{"SKIP", "skipped: out of time (GPUCHECK_TIMEOUT 8s)"}
	cut := slices.IndexFunc(gpucheckSteps, func(name string) bool {
		return strings.HasPrefix(rows[name][1], "timed out after ") || rows[name] == outOfTime
	})
	require.GreaterOrEqual(t, cut, 0, "the budget ran out in some step")
	for i, name := range gpucheckSteps {
		switch {
		case name == "kernel": // reads device.log, and takes no time of its own
		case i < cut && name == "devices":
			assert.Equal(t, "SKIP", rows[name][0], "step %s: %s", name, rows[name][1])
		case i < cut:
			assert.Equal(t, "PASS", rows[name][0], "step %s, before the budget ran out: %s", name, rows[name][1])
		case i == cut && rows[name] != outOfTime:
			assert.Equal(t, "FAIL", rows[name][0], "step %s ran into the budget", name)
		default:
			assert.Equal(t, outOfTime, rows[name], "step %s", name)
		}
	}
}
