package sealer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// randomBytes returns n bytes from a seeded generator, so failures repeat.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// referenceDigests computes what a Digester must return, straight from
// crypto/sha256 over slices of data.
func referenceDigests(data []byte, chunkSize int) Digests {
	whole := sha256.Sum256(data)
	var chunks []ChunkDigest
	var concat []byte
	for off := 0; off < len(data); off += chunkSize {
		c := sha256.Sum256(data[off:min(off+chunkSize, len(data))])
		chunks = append(chunks, c)
		concat = append(concat, c[:]...)
	}
	root := sha256.Sum256(concat)
	return Digests{Digest: hex.EncodeToString(whole[:]), ChunkRoot: hex.EncodeToString(root[:]), Chunks: chunks}
}

// writeInPieces writes data to w in pieces whose sizes come from next.
func writeInPieces(t *testing.T, d *Digester, data []byte, next func() int) {
	t.Helper()
	for len(data) > 0 {
		n := min(max(next(), 0), len(data))
		written, err := d.Write(data[:n])
		require.NoError(t, err)
		require.Equal(t, n, written)
		data = data[n:]
	}
}

func TestDigesterMatchesSHA256(t *testing.T) {
	const cs = MinChunkSize
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name  string
		size  int
		piece func() int
	}{
		{"empty", 0, func() int { return 1 }},
		{"one byte", 1, func() int { return 1 }},
		{"one-byte writes over chunks", 2*cs + 17, func() int { return 1 }},
		{"one short chunk", cs - 1, func() int { return cs }},
		{"exactly one chunk", cs, func() int { return cs }},
		{"one chunk and a byte", cs + 1, func() int { return cs }},
		{"exact multiple in chunk-sized writes", 5 * cs, func() int { return cs }},
		{"exact multiple in one write", 8 * cs, func() int { return 8 * cs }},
		{"writes straddling chunks", 7*cs + 3, func() int { return cs + 1 }},
		{"writes one short of a chunk", 6*cs - 5, func() int { return cs - 1 }},
		{"empty writes between data", 3*cs + 9, func() int { return rng.IntN(3) * 4099 }},
		{"random write sizes", 9*cs + 123, func() int { return 1 + rng.IntN(3*cs) }},
		{"large writes run the helper", 12*cs + 5, func() int { return concurrentWriteMin + rng.IntN(4*cs) }},
		{"large unaligned writes", 20 * cs, func() int { return concurrentWriteMin + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randomBytes(rng, tt.size)
			d, err := NewDigester(cs)
			require.NoError(t, err)
			writeInPieces(t, d, data, tt.piece)
			got := d.Digests()
			want := referenceDigests(data, cs)
			assert.Equal(t, want.Digest, got.Digest)
			assert.Equal(t, want.Chunks, got.Chunks)
			assert.Equal(t, want.ChunkRoot, got.ChunkRoot)
			assert.Len(t, got.Chunks, int((tt.size+cs-1)/cs))
		})
	}
}

func TestDigesterChunkSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, cs := range []int64{MinChunkSize, 128 << 10, 1 << 20} {
		data := randomBytes(rng, int(3*cs+cs/2))
		d, err := NewDigester(cs)
		require.NoError(t, err)
		writeInPieces(t, d, data, func() int { return 1 + rng.IntN(int(cs)) })
		assert.Equal(t, referenceDigests(data, int(cs)), d.Digests(), "chunk size %d", cs)
	}
}

func TestDigestsDoesNotEndTheStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	data := randomBytes(rng, 3*MinChunkSize+100)
	d, err := NewDigester(MinChunkSize)
	require.NoError(t, err)

	cut := MinChunkSize + 50
	_, err = d.Write(data[:cut])
	require.NoError(t, err)
	early := d.Digests()
	assert.Equal(t, referenceDigests(data[:cut], MinChunkSize), early)

	early.Chunks[0][0] ^= 0xff // the caller owns what it got
	_, err = d.Write(data[cut:])
	require.NoError(t, err)
	assert.Equal(t, referenceDigests(data, MinChunkSize), d.Digests())
	assert.Equal(t, d.Digests(), d.Digests(), "Digests twice in a row")
}

func TestDigesterReset(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	first := randomBytes(rng, 2*MinChunkSize+1)
	second := randomBytes(rng, MinChunkSize/2)
	d, err := NewDigester(MinChunkSize)
	require.NoError(t, err)
	_, err = d.Write(first)
	require.NoError(t, err)
	kept := d.Digests()

	d.Reset()
	assert.Equal(t, referenceDigests(nil, MinChunkSize), d.Digests(), "after Reset")
	_, err = d.Write(second)
	require.NoError(t, err)
	assert.Equal(t, referenceDigests(second, MinChunkSize), d.Digests())
	assert.Equal(t, referenceDigests(first, MinChunkSize), kept, "Reset must not touch earlier results")
}

func TestDigesterDoesNotKeepOrChangeInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	data := randomBytes(rng, 2*concurrentWriteMin)
	original := bytes.Clone(data)
	d, err := NewDigester(MinChunkSize)
	require.NoError(t, err)
	_, err = d.Write(data)
	require.NoError(t, err)
	assert.Equal(t, original, data, "Write changed its input")

	clear(data) // had Write kept data, this would change what it hashed
	assert.Equal(t, referenceDigests(original, MinChunkSize), d.Digests())
}

func TestValidateChunkSize(t *testing.T) {
	tests := []struct {
		size int64
		ok   bool
	}{
		{MinChunkSize, true}, {DefaultChunkSize, true}, {MaxChunkSize, true}, {1 << 20, true},
		{0, false}, {-MinChunkSize, false}, {MinChunkSize / 2, false}, {MaxChunkSize * 2, false},
		{MinChunkSize + 1, false}, {3 << 20, false}, {-1 << 63, false},
	}
	for _, tt := range tests {
		err := ValidateChunkSize(tt.size)
		if tt.ok {
			assert.NoError(t, err, "chunk size %d", tt.size)
			continue
		}
		assert.ErrorIs(t, err, messages.ErrInvalidInput, "chunk size %d", tt.size)
		_, derr := NewDigester(tt.size)
		assert.ErrorIs(t, derr, messages.ErrInvalidInput, "NewDigester(%d)", tt.size)
	}
	err := ValidateChunkSize(3 << 20)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "power of two")
	assert.Contains(t, err.Error(), "64.0 KiB")
	assert.Contains(t, err.Error(), "64.0 MiB")
}

func TestSumChunkAndChunkRoot(t *testing.T) {
	a, b := SumChunk([]byte("a")), SumChunk([]byte("b"))
	assert.Equal(t, ChunkDigest(sha256.Sum256([]byte("a"))), a)
	ab := sha256.Sum256(append(a[:], b[:]...))
	assert.Equal(t, hex.EncodeToString(ab[:]), ChunkRoot([]ChunkDigest{a, b}))
	assert.NotEqual(t, ChunkRoot([]ChunkDigest{a, b}), ChunkRoot([]ChunkDigest{b, a}), "order matters")
	empty := sha256.Sum256(nil)
	assert.Equal(t, hex.EncodeToString(empty[:]), ChunkRoot(nil))
}
