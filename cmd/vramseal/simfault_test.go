package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSimFaultFlagParsesBitflipAtADelay(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "bitflip@3s", want: 3 * time.Second},
		{in: "bitflip@500ms", want: 500 * time.Millisecond},
		{in: "bitflip@0s", want: 0},
		{in: "bitflip", wantErr: "use bitflip@DURATION"},
		{in: "meltdown@1s", wantErr: "use bitflip@DURATION"},
		{in: "bitflip@soon", wantErr: "must be a duration"},
		{in: "bitflip@-1s", wantErr: "must be a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var f simFaultFlag
			err := f.Set(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.False(t, f.set)
				return
			}
			require.NoError(t, err)
			assert.True(t, f.set)
			assert.Equal(t, tt.want, f.after)
		})
	}
}

// FuzzSimFaultFlag fuzzes the CLI's own duration syntax, bitflip@DURATION:
// an accepted value is never negative and reads back from its printed form.
func FuzzSimFaultFlag(f *testing.F) {
	for _, seed := range []string{"bitflip@3s", "bitflip@500ms", "bitflip@0", "bitflip@-1s", "bitflip@", "bitflip", "@3s", "bitflip@1h2m3.5s", "bitflip@9223372036854775807ns", "bitflip@1e3s", "bitflip@3s@4s"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var flag simFaultFlag
		if err := flag.Set(s); err != nil {
			return
		}
		if flag.after < 0 {
			t.Fatalf("%q gives a negative delay %s", s, flag.after)
		}
		var back simFaultFlag
		if err := back.Set(flag.String()); err != nil || back != flag {
			t.Fatalf("%q prints as %q, which reads back as %+v, %v", s, flag.String(), back, err)
		}
	})
}

// FuzzDurationBounds fuzzes the durations run's flags take (parsed as pflag
// parses them) through the bounds: no positive value checkBounds accepts is
// below its minimum, whatever the text was (validate refuses negative ones).
func FuzzDurationBounds(f *testing.F) {
	for _, seed := range []string{"1ns", "99ms", "100ms", "30s", "0", "-1s", "1h", "9223372036854775807ns", "0.0001s", "1e2ms"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return
		}
		o := &runOptions{verifyInterval: d, contentionInterval: d}
		if o.checkBounds() != nil {
			return
		}
		if d > 0 && d < minVerifyInterval {
			t.Fatalf("--verify-interval %s (%q) passed the bounds", d, s)
		}
	})
}
