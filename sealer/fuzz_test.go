package sealer

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
)

// shardIDGrammar is the shard ID rule written a second way, as the oracle
// for FuzzValidateShardID; length and ".." are checked beside it.
var shardIDGrammar = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// FuzzValidateShardID checks ValidateShardID against the regexp oracle and
// checks its messages. Seeds: testdata/fuzz/FuzzValidateShardID.
func FuzzValidateShardID(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateShardID(id)
		valid := len(id) <= MaxShardIDLen && shardIDGrammar.MatchString(id) && !strings.Contains(id, "..")
		if valid {
			require.NoError(t, err, "%.64q", id)
			return
		}
		require.ErrorIs(t, err, messages.ErrInvalidInput, "%.64q", id)
		require.NoError(t, untrusted.CheckPlain(err.Error()))
	})
}

// FuzzShardJSON feeds the strict decoder arbitrary bytes: it must never
// panic, must fail only with ErrInvalidInput and a plain short message, and
// whatever it accepts must encode to JSON that decodes to an Equal record and
// encodes the same again. Seeds: testdata/fuzz/FuzzShardJSON.
func FuzzShardJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Shard
		err := s.UnmarshalJSON(data)
		if err != nil {
			require.ErrorIs(t, err, messages.ErrInvalidInput)
			require.NoError(t, untrusted.CheckPlain(err.Error()))
			return
		}
		if !s.Signed() {
			require.NoError(t, validateRecord(&s), "accepted a malformed unsigned record")
		}

		out, err := json.Marshal(s)
		require.NoError(t, err)
		var back Shard
		require.NoError(t, back.UnmarshalJSON(out), "%s", out)
		assert.True(t, s.Equal(back), "%v\n%v", s, back)
		again, err := json.Marshal(back)
		require.NoError(t, err)
		assert.Equal(t, string(out), string(again), "the encoding is stable")

		var viaStd Shard
		require.NoError(t, json.Unmarshal(data, &viaStd), "encoding/json agrees")
		assert.True(t, s.Equal(viaStd))
	})
}
