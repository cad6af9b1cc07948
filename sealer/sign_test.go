package sealer

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// validShard returns a well-formed, unsigned record whose digests are those
// of real data.
func validShard(t testing.TB) Shard {
	t.Helper()
	d, err := NewDigester(MinChunkSize)
	require.NoError(t, err)
	data := []byte(strings.Repeat("weights ", 10000))
	_, err = d.Write(data)
	require.NoError(t, err)
	sum := d.Digests()
	return Shard{
		ID: "llama-7b.shard-00", Device: 1, Size: int64(len(data)), Digest: sum.Digest,
		ChunkSize: MinChunkSize, ChunkRoot: sum.ChunkRoot,
		SealedAt: time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC),
		ModelRef: "meta/llama-7b@v2", ShardIndex: 0, TotalShards: 4,
	}
}

func TestSignThenCheck(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	s := validShard(t)
	require.NoError(t, Sign(k, &s))
	assert.True(t, s.Signed())
	assert.Len(t, s.signature, 32)
	assert.NoError(t, CheckSignature(k, &s))

	copied := s
	assert.NoError(t, CheckSignature(k, &copied), "a copy of a signed record checks")
}

func TestSignSetsUTC(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	s := validShard(t)
	berlin := time.FixedZone("CET", 3600)
	local := s.SealedAt.In(berlin)
	s.SealedAt = local
	require.NoError(t, Sign(k, &s))
	assert.Equal(t, time.UTC, s.SealedAt.Location())
	assert.True(t, s.SealedAt.Equal(local), "the instant is unchanged")

	s.SealedAt = s.SealedAt.In(berlin)
	assert.NoError(t, CheckSignature(k, &s), "the zone is not signed, the instant is")
}

func TestCheckSignatureErrors(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	signed := validShard(t)
	require.NoError(t, Sign(k, &signed))

	tests := []struct {
		name   string
		key    *Key
		change func(*Shard)
		want   error
	}{
		{"unsigned", k, func(s *Shard) { s.signature = nil }, messages.ErrNotSealed},
		{"other worker's key", mustKey(t, testToken, "w2"), func(*Shard) {}, messages.ErrSealVerificationFailed},
		{"size changed", k, func(s *Shard) { s.Size++ }, messages.ErrSealVerificationFailed},
		{"signature cut short", k, func(s *Shard) { s.signature = s.signature[:16] }, messages.ErrSealVerificationFailed},
		{"nil key", nil, func(*Shard) {}, messages.ErrConfig},
		{"empty ID", k, func(s *Shard) { s.ID = "" }, messages.ErrInvalidInput},
		{"bad ID", k, func(s *Shard) { s.ID = "../etc/passwd" }, messages.ErrInvalidInput},
		{"zero size", k, func(s *Shard) { s.Size = 0 }, messages.ErrInvalidInput},
		{"negative size", k, func(s *Shard) { s.Size = -1 }, messages.ErrInvalidInput},
		{"negative device", k, func(s *Shard) { s.Device = -1 }, messages.ErrInvalidInput},
		{"short digest", k, func(s *Shard) { s.Digest = s.Digest[:63] }, messages.ErrInvalidInput},
		{"uppercase digest", k, func(s *Shard) { s.Digest = strings.ToUpper(s.Digest) }, messages.ErrInvalidInput},
		{"non-hex digest", k, func(s *Shard) { s.Digest = "g" + s.Digest[1:] }, messages.ErrInvalidInput},
		{"empty chunk root", k, func(s *Shard) { s.ChunkRoot = "" }, messages.ErrInvalidInput},
		{"long chunk root", k, func(s *Shard) { s.ChunkRoot += "0" }, messages.ErrInvalidInput},
		{"bad chunk size", k, func(s *Shard) { s.ChunkSize = 1000 }, messages.ErrInvalidInput},
		{"index past total", k, func(s *Shard) { s.ShardIndex = 4 }, messages.ErrInvalidInput},
		{"negative total", k, func(s *Shard) { s.TotalShards = -1 }, messages.ErrInvalidInput},
		{"control character in model ref", k, func(s *Shard) { s.ModelRef = "a\nb" }, messages.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := signed
			tt.change(&s)
			err := CheckSignature(tt.key, &s)
			if tt.want != messages.ErrInvalidInput {
				assert.ErrorIs(t, err, tt.want)
				return
			}
			assert.ErrorIs(t, err, messages.ErrSealVerificationFailed, "a signed record altered into a malformed one is an altered record")
			unsigned := s
			unsigned.signature = nil
			assert.ErrorIs(t, CheckSignature(tt.key, &unsigned), tt.want, "unsigned, it is malformed")
			assert.ErrorIs(t, Sign(tt.key, &unsigned), tt.want, "Sign refuses it too")
			assert.False(t, unsigned.Signed())
		})
	}
	assert.ErrorIs(t, CheckSignature(k, nil), messages.ErrInvalidInput)
	assert.ErrorIs(t, Sign(k, nil), messages.ErrInvalidInput)
}

func TestSignErrorsRevealNoKey(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	s := validShard(t)
	require.NoError(t, Sign(k, &s))
	s.Size++
	err := CheckSignature(k, &s)
	require.Error(t, err)
	for _, f := range secretForms(testKeyBytes(t, testToken, "w1")) {
		assert.NotContains(t, err.Error(), f)
	}
	assert.NotContains(t, err.Error(), string(testToken))
	assert.Contains(t, err.Error(), s.ID)
}

func TestCanonicalRecordSeparatesFields(t *testing.T) {
	base := validShard(t)
	shifted := base
	shifted.ID, shifted.ModelRef = base.ID+"x", base.ModelRef[1:]
	assert.NotEqual(t, canonicalRecord(&base), canonicalRecord(&shifted))
	assert.True(t, strings.HasPrefix(string(canonicalRecord(&base)[8:]), recordVersion), "the encoding names its version")

	early, late := base, base
	early.SealedAt = time.Date(1500, 1, 1, 0, 0, 0, 1, time.UTC) // outside UnixNano's range
	late.SealedAt = time.Date(1500, 1, 1, 0, 0, 0, 2, time.UTC)
	assert.NotEqual(t, canonicalRecord(&early), canonicalRecord(&late), "nanoseconds count in any year")
}

func BenchmarkSign(b *testing.B) {
	k := mustKey(b, testToken, "w1")
	s := validShard(b)
	for b.Loop() {
		if err := Sign(k, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckSignature(b *testing.B) {
	k := mustKey(b, testToken, "w1")
	s := validShard(b)
	if err := Sign(k, &s); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := CheckSignature(k, &s); err != nil {
			b.Fatal(err)
		}
	}
}
