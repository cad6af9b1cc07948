// Package python_test runs the Python client's tests against a real lease
// server, in the README's test command.
package python_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/safetensors"
	"github.com/vramseal/vramseal/internal/testwait"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/share"
	"github.com/vramseal/vramseal/supervisor"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pythonWithNumpy is an interpreter that has numpy: Debian's first. Where
// there is none the test skips, but not in CI (CI set), whose .ci/run
// installs python3 and python3-numpy.
func pythonWithNumpy(t *testing.T) string {
	t.Helper()
	for _, candidate := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(candidate)
		if err == nil && exec.Command(path, "-c", "import numpy").Run() == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		require.FailNow(t, "python3 with numpy is missing", "CI must run the Python client's tests: install python3 and python3-numpy (.ci/run does, with apt-get)")
	}
	t.Skip("no python3 with numpy: the Python client's tests cannot run (CI installs them)")
	return ""
}

// safetensorsFile is a file with an F32 tensor "weights" of shape [2, 3]
// holding 0.5, 1.5, ... 5.5.
func safetensorsFile(t *testing.T) []byte {
	t.Helper()
	table, err := safetensors.LayoutSafetensors(nil, []sealer.Tensor{{Name: "weights", DType: "F32", Shape: []uint64{2, 3}}})
	require.NoError(t, err)
	file, err := table.Header()
	require.NoError(t, err)
	for i := range 6 {
		file = binary.LittleEndian.AppendUint32(file, math.Float32bits(float32(i)+0.5))
	}
	return file
}

// TestThePythonClientAgainstARealServer serves a safetensors shard on
// device 0 and an opaque one ("victim") on device 1, and runs
// share/python/tests/test_real_server.py against them; when the Python
// side holds a lease on the victim (it says so on a pipe, fd 3, once
// acquire has returned), the device is evicted, and the client must hear
// it. (The LeaseGranted record comes before the grant is sent: an eviction
// at the record could end the lease before its grant, and the acquire
// would fail instead.)
func TestThePythonClientAgainstARealServer(t *testing.T) {
	python := pythonWithNumpy(t)
	ctx := context.Background()
	records := audit.NewMemory()
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{Shareable: true, Capacities: []int64{16 << 20, 16 << 20},
		Config: supervisor.Config{Audit: records}})
	require.NoError(t, err)
	defer func() {
		stop, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		assert.NoError(t, rig.Stop(stop))
	}()
	file := safetensorsFile(t)
	req, err := supervisor.SafetensorsRequest("model.safetensors", bytes.NewReader(file), int64(len(file)))
	require.NoError(t, err)
	_, err = rig.Seal(ctx, req)
	require.NoError(t, err)
	victim := bytes.Repeat([]byte("victim"), 1000)
	_, err = rig.Seal(ctx, supervisor.SealRequest{ID: "victim", Device: 1, Size: int64(len(victim)), Data: bytes.NewReader(victim)})
	require.NoError(t, err)

	path := filepath.Join(t.TempDir(), "share.sock")
	server, err := share.Listen(share.Config{Runtime: rig.Runtime, Path: path, WorkerID: "rig"})
	require.NoError(t, err)
	defer func() { assert.NoError(t, server.Close()) }()

	leased, leasedW, err := os.Pipe()
	require.NoError(t, err)
	defer func() { assert.NoError(t, leased.Close()) }()
	var out bytes.Buffer
	cmd := exec.Command(python, "-m", "unittest", "-v", "tests.test_real_server")
	cmd.Dir = "."
	cmd.Env = append(os.Environ(), "VRAMSEAL_SHARE_SOCKET="+path, "VRAMSEAL_LEASED_FD=3", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{leasedW}
	err = cmd.Start()
	assert.NoError(t, leasedW.Close()) // the child has its copy: its exit ends the pipe
	require.NoError(t, err)

	// Once the Python side holds a lease on the victim, evict its device.
	evicted := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(leased).ReadString('\n')
		if line != "leased\n" {
			evicted <- fmt.Errorf("the Python side never said it leased the victim: %q, %v", line, err)
			return
		}
		evict, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err = rig.Evict(evict, 1, "test: revoke the Python client's lease")
		evicted <- err
	}()
	err = cmd.Wait()
	require.NoError(t, err, "the Python client's tests:\n%s", out.String())
	assert.NotContains(t, out.String(), "skipped", "no Python test may skip here:\n%s", out.String())
	assert.Contains(t, out.String(), "OK")
	require.NoError(t, testwait.Receive(t, evicted, "the eviction of the victim's device"))
	var ended []string
	for _, r := range records.Records() {
		if r.Event == audit.EventLeaseEnded && r.Fields["shard_id"] == "victim" {
			ended = append(ended, r.Fields["ended"].(string))
		}
	}
	assert.Equal(t, []string{"revoked"}, ended, "the victim's lease ended once, revoked")
	t.Logf("python:\n%s", strings.TrimSpace(out.String()))
}

// TestThePythonClientsOwnTests runs share/python/tests/test_client.py,
// the client's tests against a fake server of their own.
func TestThePythonClientsOwnTests(t *testing.T) {
	t.Parallel()
	python := pythonWithNumpy(t)
	cmd := exec.Command(python, "-m", "unittest", "-v", "tests.test_client")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the Python client's tests:\n%s", out)
	assert.NotContains(t, string(out), "skipped", "no Python test may skip here:\n%s", out)
}
