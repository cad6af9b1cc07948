package messages

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShardStatusJSONIsWhatTheWorkerServes(t *testing.T) {
	sealed := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	s := ShardStatus{ID: "s1", Device: 1, Size: 8, Digest: "ab", SealedAt: sealed,
		Tensors: []Tensor{{Name: "w", DType: "F32", Shape: []uint64{2}, Offset: 8, Size: 8}}}
	b, err := json.Marshal(s)
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(b, &fields))
	assert.Nil(t, fields["last_verified"], "null until first verified")
	assert.Contains(t, fields, "last_verified")
	assert.Equal(t, "s1", fields["id"])
	assert.NotContains(t, fields, "model_ref", "omitted when empty")
	assert.Len(t, fields["tensors"], 1)

	s.LastVerified = sealed.Add(time.Minute)
	b, err = json.Marshal(s)
	require.NoError(t, err)
	var back ShardStatus
	require.NoError(t, json.Unmarshal(b, &back))
	assert.True(t, back.LastVerified.Equal(s.LastVerified), "round trips")
	assert.Equal(t, s.ID, back.ID)
	assert.Equal(t, s.Tensors, back.Tensors)
}
