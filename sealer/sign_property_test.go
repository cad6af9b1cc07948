package sealer

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// propertySeed fixes the generator so a failure repeats; the tests log it.
const propertySeed = 20260304

// propertyCases is how many random records each property test tries.
func propertyCases() int {
	if testing.Short() {
		return 8
	}
	return 25
}

// sealCase is one random record with the data and key that sealed it.
type sealCase struct {
	data  []byte
	key   *Key
	shard Shard
}

const idFirst = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomID returns a valid shard ID of 1 to 80 bytes.
func randomID(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteByte(idFirst[rng.IntN(len(idFirst))])
	for n := rng.IntN(80); b.Len() <= n; {
		c := (idFirst + "-_.")[rng.IntN(len(idFirst)+3)]
		if c == '.' && strings.HasSuffix(b.String(), ".") {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// randomModelRef returns printable text, some of it outside ASCII, or "".
func randomModelRef(rng *rand.Rand) string {
	runes := []rune("abcxyz019-_./@:éüßσж中🙂 ")
	var b strings.Builder
	for range rng.IntN(40) {
		b.WriteRune(runes[rng.IntN(len(runes))])
	}
	return b.String()
}

// randomCase digests random data with a random chunk size and builds a
// random, valid, unsigned record for it under a random key.
func randomCase(t *testing.T, rng *rand.Rand) sealCase {
	t.Helper()
	chunkSize := int64(MinChunkSize) << rng.IntN(3)
	data := randomBytes(rng, 1+rng.IntN(int(3*chunkSize)))
	d, err := NewDigester(chunkSize)
	require.NoError(t, err)
	writeInPieces(t, d, data, func() int { return 1 + rng.IntN(2*int(chunkSize)) })
	sums := d.Digests()

	total := rng.IntN(9)
	index := 0
	if total > 0 {
		index = rng.IntN(total)
	}
	key := mustKey(t, randomBytes(rng, MinTokenLen+rng.IntN(48)), "worker-"+strconv.Itoa(rng.IntN(1000)))
	return sealCase{data: data, key: key, shard: Shard{
		ID: randomID(rng), Device: rng.IntN(16), Size: int64(len(data)),
		Digest: sums.Digest, ChunkSize: chunkSize, ChunkRoot: sums.ChunkRoot,
		SealedAt:   time.Unix(rng.Int64N(7e9), rng.Int64N(1e9)).UTC(),
		ModelRef:   randomModelRef(rng),
		ShardIndex: index, TotalShards: total,
	}}
}

// requireRejected fails unless err is a check failure: the record no longer
// matches its signature, or it is no longer well formed.
func requireRejected(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, messages.ErrSealVerificationFailed) && !errors.Is(err, messages.ErrInvalidInput) {
		t.Fatalf("%s: CheckSignature = %v, want a verification failure or invalid input", what, err)
	}
}

func TestPropertySealThenCheckPasses(t *testing.T) {
	t.Logf("seed %d", propertySeed)
	rng := rand.New(rand.NewPCG(propertySeed, 1))
	for range propertyCases() {
		c := randomCase(t, rng)
		s := c.shard
		require.NoError(t, Sign(c.key, &s), "%v", s)
		require.NoError(t, CheckSignature(c.key, &s), "%v", s)

		again := c.shard
		require.NoError(t, Sign(c.key, &again))
		assert.Equal(t, s.signature, again.signature, "same record and key, same signature")
	}
}

// flipString returns s with bit b of byte i flipped.
func flipString(s string, i, b int) string {
	p := []byte(s)
	p[i] ^= 1 << b
	return string(p)
}

func TestPropertyAnyBitFlipFailsCheck(t *testing.T) {
	t.Logf("seed %d", propertySeed)
	rng := rand.New(rand.NewPCG(propertySeed, 2))
	for range propertyCases() {
		c := randomCase(t, rng)
		signed := c.shard
		require.NoError(t, Sign(c.key, &signed))
		require.NoError(t, CheckSignature(c.key, &signed))

		check := func(what string, change func(*Shard)) {
			s := signed
			change(&s)
			requireRejected(t, CheckSignature(c.key, &s), what)
		}
		strs := map[string]func(*Shard) *string{
			"ID":        func(s *Shard) *string { return &s.ID },
			"Digest":    func(s *Shard) *string { return &s.Digest },
			"ChunkRoot": func(s *Shard) *string { return &s.ChunkRoot },
			"ModelRef":  func(s *Shard) *string { return &s.ModelRef },
		}
		for name, field := range strs {
			for i := range len(*field(&signed)) {
				for b := range 8 {
					check(name+" byte "+strconv.Itoa(i)+" bit "+strconv.Itoa(b), func(s *Shard) {
						*field(s) = flipString(*field(s), i, b)
					})
				}
			}
		}
		ints := []struct {
			name string
			bits uint
			flip func(s *Shard, bit uint)
		}{
			{"Device", strconv.IntSize, func(s *Shard, bit uint) { s.Device ^= 1 << bit }},
			{"Size", 64, func(s *Shard, bit uint) { s.Size ^= 1 << bit }},
			{"ChunkSize", 64, func(s *Shard, bit uint) { s.ChunkSize ^= 1 << bit }},
			{"ShardIndex", strconv.IntSize, func(s *Shard, bit uint) { s.ShardIndex ^= 1 << bit }},
			{"TotalShards", strconv.IntSize, func(s *Shard, bit uint) { s.TotalShards ^= 1 << bit }},
			{"Generation", 64, func(s *Shard, bit uint) { s.Generation ^= 1 << bit }},
			{"SealedAt seconds", 64, func(s *Shard, bit uint) {
				s.SealedAt = time.Unix(s.SealedAt.Unix()^(1<<bit), int64(s.SealedAt.Nanosecond()))
			}},
			{"SealedAt nanoseconds", 32, func(s *Shard, bit uint) {
				s.SealedAt = time.Unix(s.SealedAt.Unix(), int64(uint32(s.SealedAt.Nanosecond())^(1<<bit)))
			}},
		}
		for _, f := range ints {
			for bit := range f.bits {
				check(f.name+" bit "+strconv.Itoa(int(bit)), func(s *Shard) { f.flip(s, bit) })
			}
		}
		for i := range len(signed.signature) {
			for b := range 8 {
				check("signature byte "+strconv.Itoa(i)+" bit "+strconv.Itoa(b), func(s *Shard) {
					s.signature = bytes.Clone(s.signature)
					s.signature[i] ^= 1 << b
				})
			}
		}
	}
}

func TestPropertyDataBitFlipFailsCheck(t *testing.T) {
	t.Logf("seed %d", propertySeed)
	rng := rand.New(rand.NewPCG(propertySeed, 3))
	const flipsPerCase = 12
	for range propertyCases() {
		c := randomCase(t, rng)
		signed := c.shard
		require.NoError(t, Sign(c.key, &signed))
		before := referenceDigests(c.data, int(signed.ChunkSize))

		for range flipsPerCase {
			bit := rng.IntN(len(c.data) * 8)
			c.data[bit/8] ^= 1 << (bit % 8)
			d, err := NewDigester(signed.ChunkSize)
			require.NoError(t, err)
			_, err = d.Write(c.data)
			require.NoError(t, err)
			after := d.Digests()
			c.data[bit/8] ^= 1 << (bit % 8)

			s := signed
			s.Digest, s.ChunkRoot = after.Digest, after.ChunkRoot
			err = CheckSignature(c.key, &s)
			require.ErrorIs(t, err, messages.ErrSealVerificationFailed, "data bit %d", bit)

			hit := int64(bit/8) / signed.ChunkSize
			for i := range before.Chunks {
				assert.Equal(t, int64(i) == hit, before.Chunks[i] != after.Chunks[i], "chunk %d after flipping bit %d", i, bit)
			}
		}
	}
}

func TestPropertyKeysSeparate(t *testing.T) {
	t.Logf("seed %d", propertySeed)
	rng := rand.New(rand.NewPCG(propertySeed, 4))
	for range propertyCases() {
		c := randomCase(t, rng)
		token := randomBytes(rng, MinTokenLen+rng.IntN(32))
		worker := randomID(rng)
		a, b := mustKey(t, token, worker), mustKey(t, token, worker+"x")
		assert.NotEqual(t, macUnder(a), macUnder(b), "different worker IDs, different keys")
		other := mustKey(t, randomBytes(rng, len(token)), worker)
		assert.NotEqual(t, macUnder(a), macUnder(other), "different tokens, different keys")

		sa, sb := c.shard, c.shard
		require.NoError(t, Sign(a, &sa))
		require.NoError(t, Sign(b, &sb))
		assert.NotEqual(t, sa.signature, sb.signature, "different keys, different signatures")
		assert.ErrorIs(t, CheckSignature(b, &sa), messages.ErrSealVerificationFailed)
		assert.ErrorIs(t, CheckSignature(other, &sa), messages.ErrSealVerificationFailed)
	}
}
