package driver

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// launchErrorEnv makes every cuLaunchKernel of the fake libcuda fail with
// the CUresult it holds, and syncErrorEnv every cuStreamSynchronize after a
// launch, as a fault inside the kernel would.
const (
	launchErrorEnv = "VRAMSEAL_FAKE_CUDA_LAUNCH_ERROR"
	syncErrorEnv   = "VRAMSEAL_FAKE_CUDA_SYNC_ERROR"
)

// hostSums is crypto/sha256 of each chunk of p, the last one short.
func hostSums(p []byte, chunkSize int64) [][sha256.Size]byte {
	var sums [][sha256.Size]byte
	for off := int64(0); off < int64(len(p)); off += chunkSize {
		sums = append(sums, sha256.Sum256(p[off:min(off+chunkSize, int64(len(p)))]))
	}
	return sums
}

// filledAllocation allocates size bytes on d, fills them with a pattern and
// returns the handle and the pattern; the test frees it.
func filledAllocation(t *testing.T, d *Device, size int) (cuda.Handle, []byte) {
	t.Helper()
	h, err := d.Allocate(int64(size))
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Free(h) })
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*131 + i>>9)
	}
	require.NoError(t, d.Write(h, 0, data))
	return h, data
}

func TestDriverOnDeviceHashesWithTheKernel(t *testing.T) {
	d := openTestDriver(t)
	require.True(t, d.HashesOnDevice(), "the embedded kernel loads")
	h, data := filledAllocation(t, d, 3<<20+17)
	for _, tc := range []struct {
		name          string
		offset, chunk int64
	}{
		{"one block of threads", 0, 64 << 10},
		{"four blocks of threads, the last holding one chunk", 0, 8 << 10},
		{"odd offset, odd chunk size", 5, 3001},
		{"one chunk", 1 << 20, 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.HashChunks(h, tc.offset, int64(len(data))-tc.offset, tc.chunk)
			require.NoError(t, err)
			assert.Equal(t, hostSums(data[tc.offset:], tc.chunk), got)
		})
	}
}

func TestDriverOnDeviceHashesSpansInOneLaunch(t *testing.T) {
	d := openTestDriver(t)
	require.True(t, d.HashesOnDevice(), "the embedded kernel loads")
	var spans []cuda.Span
	var want [][][sha256.Size]byte
	for i, size := range []int{200<<10 + 1, 4 << 10, 1<<20 + 9} {
		h, data := filledAllocation(t, d, size)
		chunk := int64(8<<10) << i
		spans = append(spans, cuda.Span{Handle: h, Offset: int64(i), Length: int64(size - i), ChunkSize: chunk},
			cuda.Span{Handle: h, Length: 0, ChunkSize: chunk})
		want = append(want, hostSums(data[i:], chunk), [][sha256.Size]byte{})
	}
	got, err := d.HashSpans(spans)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestDriverOnDeviceFallsBackWhenTheKernelDoesNotLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		ptx  []byte
		op   string
	}{
		{"not PTX", []byte("no kernel here"), "cuModuleLoadDataEx"},
		{"no such entry", bytes.ReplaceAll(sha256PTX, []byte(sha256Entry), []byte("vs_other_kernel")), "cuModuleGetFunction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			openTestDriver(t) // skips without a driver
			var logged bytes.Buffer
			d, err := Open(0, withKernelPTX(tc.ptx), WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
			require.NoError(t, err, "a kernel that does not load does not stop the device opening")
			defer func() { assert.NoError(t, d.Close(), "nothing of the failed module is left to unload") }()
			assert.False(t, d.HashesOnDevice())

			h, data := filledAllocation(t, d, 1<<20+3)
			for range 3 {
				got, err := d.HashChunks(h, 0, int64(len(data)), 64<<10)
				require.NoError(t, err)
				assert.Equal(t, hostSums(data, 64<<10), got, "hashed on the host")
			}
			other, more := filledAllocation(t, d, 100<<10)
			spans, err := d.HashSpans([]cuda.Span{
				{Handle: other, Length: int64(len(more)), ChunkSize: 4 << 10},
				{Handle: h, Offset: 3, Length: 1 << 20, ChunkSize: 64 << 10},
			})
			require.NoError(t, err)
			assert.Equal(t, [][][sha256.Size]byte{hostSums(more, 4<<10), hostSums(data[3:], 64<<10)}, spans,
				"spans hashed on the host")
			lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
			require.Len(t, lines, 1, "logged once, not per hash:\n%s", logged.String())
			assert.Contains(t, lines[0], "level=WARN")
			assert.Contains(t, lines[0], "SHA-256 kernel did not load")
			assert.Contains(t, lines[0], tc.op)
			if os.Getenv(fakeCUDAEnv) != "" && tc.op == "cuModuleLoadDataEx" {
				assert.Contains(t, lines[0], "JIT error log: fake libcuda: neither PTX nor a cubin", "the JIT's error log is in the warning")
			}
		})
	}
}

func TestDriverOnDeviceLaunchFailure(t *testing.T) {
	if os.Getenv(fakeCUDAEnv) == "" {
		t.Skip("launch failures are injected by the fake libcuda only")
	}
	for _, tc := range []struct {
		env, code, want string
	}{
		{launchErrorEnv, "719", "device fault: cuda device 0: cuLaunchKernel: CUDA_ERROR_LAUNCH_FAILED"},
		{syncErrorEnv, "700", "device fault: cuda device 0: cuStreamSynchronize after the kernel: CUDA_ERROR_ILLEGAL_ADDRESS"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			d := openTestDriver(t)
			h, data := filledAllocation(t, d, 256<<10)
			free, _, err := d.MemInfo()
			require.NoError(t, err)

			t.Setenv(tc.env, tc.code)
			_, err = d.HashChunks(h, 0, int64(len(data)), 64<<10)
			assert.ErrorIs(t, err, messages.ErrDeviceFault)
			assert.EqualError(t, err, tc.want)
			after, _, err := d.MemInfo()
			require.NoError(t, err)
			assert.Equal(t, free, after, "a failed launch allocates nothing: its lane's buffer was reserved at Open")

			require.NoError(t, os.Unsetenv(tc.env))
			got, err := d.HashChunks(h, 0, int64(len(data)), 64<<10)
			require.NoError(t, err)
			assert.Equal(t, hostSums(data, 64<<10), got, "launches work again")
		})
	}
}

func TestDriverOnDeviceReservesLaunchBuffersAtOpen(t *testing.T) {
	d := openTestDriver(t)
	require.True(t, d.HashesOnDevice(), "the embedded kernel loads")
	h, data := filledAllocation(t, d, 1<<20)
	free, _, err := d.MemInfo()
	require.NoError(t, err)
	before := d.HashStats()
	for range 3 {
		got, err := d.HashChunks(h, 0, int64(len(data)), 64<<10)
		require.NoError(t, err)
		assert.Equal(t, hostSums(data, 64<<10), got)
	}
	after, _, err := d.MemInfo()
	require.NoError(t, err)
	assert.Equal(t, free, after, "hashing allocates nothing")
	stats := d.HashStats()
	assert.Equal(t, before.Launches+3, stats.Launches, "a launch a call")
	assert.Equal(t, before.Chunks+3*16, stats.Chunks, "16 chunks a launch")
	assert.Equal(t, before.HostFallbacks, stats.HostFallbacks, "nothing hashed on the host")
}

func TestDriverOnDeviceSplitsLaunchesAtTheirCapacity(t *testing.T) {
	d := openTestDriver(t)
	require.True(t, d.HashesOnDevice(), "the embedded kernel loads")
	const chunk = 64
	h, data := filledAllocation(t, d, 2*launchChunks*chunk+1000)
	spans := []cuda.Span{
		{Handle: h, Length: launchChunks*chunk - 10, ChunkSize: chunk}, // a launch, bar one chunk
		{Handle: h, Offset: 7, Length: int64(len(data)) - 7, ChunkSize: chunk},
	}
	before := d.HashStats()
	got, err := d.HashSpans(spans)
	require.NoError(t, err)
	assert.Equal(t, [][][sha256.Size]byte{hostSums(data[:launchChunks*chunk-10], chunk), hostSums(data[7:], chunk)}, got)
	total := int64(len(got[0]) + len(got[1]))
	assert.Equal(t, (total+launchChunks-1)/launchChunks, d.HashStats().Launches-before.Launches,
		"%d chunks in as few launches of %d as hold them", total, launchChunks)
}

func TestDriverOnDeviceFullDeviceHashesOnTheHost(t *testing.T) {
	if os.Getenv(fakeCUDAEnv) == "" {
		t.Skip("a GPU's context keeps some memory, so only the fake libcuda can be filled exactly")
	}
	d := openTestDriver(t)
	require.True(t, d.HashesOnDevice(), "the embedded kernel loads")
	h, data := filledAllocation(t, d, int(d.Properties().TotalMemory))
	free, _, err := d.MemInfo()
	require.NoError(t, err)
	assert.Zero(t, free, "the allocation took the lanes' digest buffers")

	before := d.HashStats()
	got, err := d.HashChunks(h, 0, int64(len(data)), 4<<20)
	require.NoError(t, err)
	assert.Equal(t, hostSums(data, 4<<20), got, "hashed on the host")
	assert.Equal(t, before.HostFallbacks+1, d.HashStats().HostFallbacks, "the fallback is counted")
	assert.Equal(t, before.Launches, d.HashStats().Launches)

	require.NoError(t, d.Free(h))
	small, more := filledAllocation(t, d, 1<<20)
	got, err = d.HashChunks(small, 0, int64(len(more)), 64<<10)
	require.NoError(t, err)
	assert.Equal(t, hostSums(more, 64<<10), got)
	assert.Equal(t, before.Launches+1, d.HashStats().Launches, "once memory is freed, a lane reserves its buffer again")
}
