package stress

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		in   string
		want Faults
	}{
		{"default", DefaultFaults()},
		{"none", Faults{}},
		{" none ", Faults{}},
		{"alloc=0.01,copy=0.005,read=0.01,bitflip=0.001,lost=0.0002", Faults{Alloc: 0.01, Copy: 0.005, Read: 0.01, BitFlip: 0.001, Lost: 0.0002}},
		{"bitflip=1", Faults{BitFlip: 1}},
		{"read=0, alloc=0.5", Faults{Read: 0, Alloc: 0.5}},
		{"lost=1e-4", Faults{Lost: 1e-4}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFaults(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseFaultsRejects(t *testing.T) {
	tests := []struct{ in, mention string }{
		{"", "empty"},
		{"some", "not kind=rate"},
		{"alloc", "not kind=rate"},
		{"flood=0.1", "unknown kind"},
		{"alloc=0.1,alloc=0.2", "twice"},
		{"alloc=1.5", "probability"},
		{"alloc=-0.1", "probability"},
		{"alloc=NaN", "probability"},
		{"alloc=x", "probability"},
		{"alloc=0.1,", "not kind=rate"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseFaults(tt.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, messages.ErrInvalidInput)
			assert.Contains(t, err.Error(), tt.mention)
		})
	}
}

func TestFaultsStringParsesBack(t *testing.T) {
	for _, f := range []Faults{{}, DefaultFaults(), {Alloc: 1, Lost: 0.125}} {
		t.Run(f.String(), func(t *testing.T) {
			got, err := ParseFaults(f.String())
			require.NoError(t, err)
			assert.Equal(t, f, got)
		})
	}
}

// FuzzParseFaults checks that whatever ParseFaults accepts holds rates from
// 0 to 1 and survives a round trip through String.
func FuzzParseFaults(f *testing.F) {
	for _, s := range []string{"default", "none", "alloc=0.01,copy=0.005", "bitflip=1", "lost=2", "x=y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		faults, err := ParseFaults(s)
		if err != nil {
			return
		}
		for _, kind := range faultKinds {
			r := *faults.rate(kind)
			assert.True(t, r >= 0 && r <= 1, "%s=%v", kind, r)
		}
		back, err := ParseFaults(faults.String())
		require.NoError(t, err)
		assert.Equal(t, faults, back)
	})
}
