package audit

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryKeepsRecordsInOrder(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	require.NoError(t, m.Record(ctx, record(1)))
	require.NoError(t, m.Record(ctx, record(2)))

	broken := errors.New("broken")
	m.FailWith(broken)
	assert.ErrorIs(t, m.Record(ctx, record(3)), broken)
	m.FailWith(nil)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, m.Record(cancelled, record(4)), context.Canceled)
	require.NoError(t, m.Record(ctx, record(5)))

	got := m.Records()
	require.Len(t, got, 3)
	for i, want := range []string{"shard-1", "shard-2", "shard-5"} {
		assert.Equal(t, want, got[i].Fields["shard"])
	}
	got[0].Event = "changed"
	assert.Equal(t, EventVramSealed, m.Records()[0].Event, "Records returns a copy")
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{SeverityInfo, SeverityWarning, SeverityCritical} {
		t.Run(s.String(), func(t *testing.T) {
			text, err := s.MarshalText()
			require.NoError(t, err)
			var back Severity
			require.NoError(t, back.UnmarshalText(text))
			assert.Equal(t, s, back)
		})
	}
	var s Severity
	assert.Error(t, s.UnmarshalText([]byte("loud")))
	assert.Equal(t, "Severity(9)", Severity(9).String())
}
