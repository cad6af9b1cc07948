package cuda

import (
	"crypto/sha256"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHashBufferedMatchesSHA256(t *testing.T) {
	data := make([]byte, 3*hashBufferSize+17)
	for i := range data {
		data[i] = byte(i * 31)
	}
	buf := make([]byte, hashBufferSize)
	for _, n := range []int{0, 1, hashBufferSize, hashBufferSize + 1, len(data)} {
		assert.Equal(t, sha256.Sum256(data[:n]), hashBuffered(data[:n], buf), "%d bytes", n)
	}
}

// countedWays are a chooser's two ways, each counting its calls; the first
// sleeps first, so that it is always the slower.
func countedWays(calls *[2]atomic.Int64, sleep time.Duration) [2]hashWay {
	return [2]hashWay{
		func(data, buf []byte) [sha256.Size]byte {
			calls[0].Add(1)
			time.Sleep(sleep)
			return hashDirect(data, buf)
		},
		func(data, buf []byte) [sha256.Size]byte {
			calls[1].Add(1)
			return hashBuffered(data, buf)
		},
	}
}

func TestHashChooserKeepsTheFasterWay(t *testing.T) {
	var calls [2]atomic.Int64
	c := newHashChooser(countedWays(&calls, 20*time.Millisecond)) // far beyond hashing 1 MiB
	data := make([]byte, calibrationMinChunk)
	want := sha256.Sum256(data)
	for range 2 * calibrationSamples {
		require.Equal(t, want, c.sum(data), "every way hashes alike while measuring")
	}
	require.Equal(t, int64(calibrationSamples), calls[0].Load(), "each way is measured in turn")
	require.Equal(t, int64(calibrationSamples), calls[1].Load(), "each way is measured in turn")
	for range 10 {
		require.Equal(t, want, c.sum(data))
	}
	assert.Equal(t, int64(calibrationSamples), calls[0].Load(), "the slow way is not used once chosen against")
	assert.Equal(t, int64(calibrationSamples+10), calls[1].Load(), "the fast way hashes every chunk once chosen")
}

func TestHashChooserTimesNoSmallChunk(t *testing.T) {
	var calls [2]atomic.Int64
	c := newHashChooser(countedWays(&calls, 0))
	small := make([]byte, calibrationMinChunk-1)
	for range 3 * calibrationSamples {
		require.Equal(t, sha256.Sum256(small), c.sum(small))
	}
	assert.Zero(t, calls[0].Load()+calls[1].Load(), "a chunk small enough to sit in cache is hashed in place, untimed")
	assert.Zero(t, c.chosen.Load(), "no choice from chunks that may be cached")
}
