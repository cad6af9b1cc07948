package driver

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/fakecuda"
	"github.com/vramseal/vramseal/messages"
)

// fakeCUDAEnv is set in the child test process that runs the driver tests
// over testdata/fake_libcuda.c instead of a real driver.
const fakeCUDAEnv = fakecuda.Env

// openTestDriver opens CUDA device 0 and closes it when the test ends, or
// skips the test when this machine has no driver or no GPU.
func openTestDriver(tb testing.TB) *Device {
	tb.Helper()
	count, err := DeviceCount()
	if err != nil {
		tb.Skipf("no NVIDIA driver: %v", err)
	}
	if count == 0 {
		tb.Skip("no NVIDIA driver: the driver reports no CUDA device")
	}
	d, err := Open(0)
	require.NoError(tb, err)
	tb.Cleanup(func() { assert.NoError(tb, d.Close(), "closing the driver") })
	return d
}

func TestCUDAResultError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		device int
		code   int
		errKey string
		kind   error
		want   string
	}{
		{"out of memory", 2, cudaErrorOutOfMemory, "CUDA_ERROR_OUT_OF_MEMORY", messages.ErrInsufficientVRAM,
			"insufficient VRAM: cuda device 2: op: CUDA_ERROR_OUT_OF_MEMORY"},
		{"invalid value", 0, cudaErrorInvalidValue, "CUDA_ERROR_INVALID_VALUE", messages.ErrInvalidInput,
			"invalid input: cuda device 0: op: CUDA_ERROR_INVALID_VALUE"},
		{"illegal address", 1, 700, "CUDA_ERROR_ILLEGAL_ADDRESS", messages.ErrDeviceFault,
			"device fault: cuda device 1: op: CUDA_ERROR_ILLEGAL_ADDRESS"},
		{"ECC uncorrectable", 3, 214, "CUDA_ERROR_ECC_UNCORRECTABLE", messages.ErrDeviceFault,
			"device fault: cuda device 3: op: CUDA_ERROR_ECC_UNCORRECTABLE"},
		{"unnamed code", 0, 12345, "", messages.ErrDeviceFault,
			"device fault: cuda device 0: op: CUDA error 12345"},
		{"no device", -1, 999, "CUDA_ERROR_UNKNOWN", messages.ErrDeviceFault,
			"device fault: cuda: op: CUDA_ERROR_UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cudaResultError(tc.device, "op", tc.code, tc.errKey)
			assert.ErrorIs(t, err, tc.kind)
			assert.EqualError(t, err, tc.want)
			for _, other := range []error{messages.ErrInsufficientVRAM, messages.ErrInvalidInput, messages.ErrDeviceFault} {
				if other != tc.kind {
					assert.NotErrorIs(t, err, other)
				}
			}
		})
	}
}

func TestFormatGPUUUID(t *testing.T) {
	b := []byte{0x7f, 0x6b, 0x1c, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
	assert.Equal(t, "GPU-7f6b1c00-dead-beef-0102-030405060708", formatGPUUUID(b))
	assert.Empty(t, formatGPUUUID(b[:15]), "a short UUID is not formatted")
}

func TestOpenDriverRejectsNegativeIndex(t *testing.T) {
	d, err := Open(-1)
	assert.ErrorIs(t, err, messages.ErrInvalidInput)
	assert.Nil(t, d)
}

func TestOpenDriverWithoutDriver(t *testing.T) {
	if _, err := DeviceCount(); err == nil {
		t.Skip("a CUDA driver is installed; this test covers machines without one")
	}
	d, err := Open(0)
	assert.Nil(t, d)
	assert.ErrorIs(t, err, cuda.ErrNoDriver)
	assert.EqualError(t, err, "NVIDIA driver not found: libcuda.so.1 could not be loaded")
	assert.False(t, messages.IsFatal(err), "a missing driver is not a device fault")
}

func TestDriverOnDeviceRejectsMissingIndex(t *testing.T) {
	openTestDriver(t)
	count, err := DeviceCount()
	require.NoError(t, err)

	d, err := Open(count)
	assert.ErrorIs(t, err, messages.ErrInvalidInput)
	assert.Nil(t, d)
}

func TestDriverOnDeviceErrorsCarryNoAddress(t *testing.T) {
	d := openTestDriver(t)
	const size = 4 << 10
	h, err := d.Allocate(size)
	require.NoError(t, err)
	d.mu.Lock()
	a, err := d.table.Find("test", h)
	d.mu.Unlock()
	require.NoError(t, err)
	var ptr uint64
	require.NoError(t, a.Shared(d.table.Name(), "test", h, func(p devicePtr) error { ptr = uint64(p); return nil }))
	require.NotZero(t, ptr)

	var errs []error
	errs = append(errs, d.Write(h, size, []byte{1}))
	errs = append(errs, d.Read(h, -1, make([]byte, 1)))
	errs = append(errs, d.Write(h+1000, 0, []byte{1}))
	_, err = d.Allocate(d.Properties().TotalMemory + 1)
	errs = append(errs, err)
	require.NoError(t, d.Free(h))
	errs = append(errs, d.Read(h, 0, make([]byte, 1)))
	errs = append(errs, d.Free(h))

	for _, form := range []string{"%x", "%X", "%#x", "%d"} {
		addr := fmt.Sprintf(form, ptr)
		for i, err := range errs {
			require.Error(t, err, "error %d", i)
			assert.NotContains(t, err.Error(), addr, "error %d shows the device address", i)
		}
	}
}

func TestDriverOnDeviceCopiesFromAnyThread(t *testing.T) {
	d := openTestDriver(t)
	const workers, size = 8, 64 << 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			// Each worker runs on a thread of its own, where no context has
			// been made current by anyone else.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			errs <- roundTrip(d, byte(w), size)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

// roundTrip writes a pattern into a new allocation, reads it back, compares
// and frees it.
func roundTrip(d *Device, seed byte, size int) error {
	h, err := d.Allocate(int64(size))
	if err != nil {
		return err
	}
	want := make([]byte, size)
	for i := range want {
		want[i] = seed + byte(i*7)
	}
	got := make([]byte, size)
	if err := errors.Join(d.Write(h, 0, want), d.Read(h, 0, got)); err != nil {
		return errors.Join(err, d.Free(h))
	}
	if string(got) != string(want) {
		return errors.Join(errors.New("read back different bytes"), d.Free(h))
	}
	return d.Free(h)
}

func TestDriverOnDeviceCloseFreesEverything(t *testing.T) {
	d := openTestDriver(t)
	before, _, err := d.MemInfo()
	require.NoError(t, err)
	for range 3 {
		_, err := d.Allocate(1 << 20)
		require.NoError(t, err)
	}
	require.Equal(t, 3, d.Outstanding())

	require.NoError(t, d.Close())
	assert.Zero(t, d.Outstanding())

	again, err := Open(0)
	require.NoError(t, err)
	defer func() { assert.NoError(t, again.Close()) }()
	after, _, err := again.MemInfo()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, after, before-(1<<20), "the freed memory is back, give or take other processes")
}

// buildFakeLibcuda builds testdata/fake_libcuda.c as libcuda.so.1 in a
// directory it returns, with the C compiler flags given (-DFAKE_NO_VMM), or
// skips the test without a C compiler or when it already runs over the fake.
func buildFakeLibcuda(t *testing.T, cflags ...string) string {
	t.Helper()
	if os.Getenv(fakeCUDAEnv) != "" {
		t.Skip("already running over the fake libcuda")
	}
	return fakecuda.Build(t, cflags...)
}

// benchAllocation allocates size bytes on d for a benchmark, 16 MiB over
// the fake libcuda and at most half the free memory, and frees them when
// it ends.
func benchAllocation(b *testing.B, d *Device, size int64) (cuda.Handle, int64) {
	b.Helper()
	free, _, err := d.MemInfo()
	require.NoError(b, err)
	if os.Getenv(fakeCUDAEnv) != "" {
		size = 16 << 20
	}
	size = min(size, free/2)
	h, err := d.Allocate(size)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, d.Free(h)) })
	return h, size
}

// BenchmarkDriverCopy measures copies between host memory and CUDA device 0:
// host-to-device, device-to-host, and verify (device-to-host in 4 MiB chunks,
// each hashed with SHA-256 on one core). The MB/s column is the throughput.
// It skips without a driver.
func BenchmarkDriverCopy(b *testing.B) {
	d := openTestDriver(b)
	h, size := benchAllocation(b, d, 256<<20)
	host := make([]byte, size)
	for i := range host {
		host[i] = byte(i * 31)
	}
	require.NoError(b, d.Write(h, 0, host))

	b.Run("HtoD", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if err := d.Write(h, 0, host); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DtoH", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if err := d.Read(h, 0, host); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		const chunk = 4 << 20
		buf := make([]byte, chunk)
		b.SetBytes(size)
		for b.Loop() {
			for off := int64(0); off < size; off += chunk {
				n := min(chunk, size-off)
				if err := d.Read(h, off, buf[:n]); err != nil {
					b.Fatal(err)
				}
				sha256.Sum256(buf[:n])
			}
		}
	})
}
