package units

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{10 << 10, "10.0 KiB"},
		{1<<20 - 1, "1.0 MiB"}, // rounds up into the next unit, not "1024.0 KiB"
		{1 << 20, "1.0 MiB"},
		{4 << 20, "4.0 MiB"},
		{1536 << 20, "1.5 GiB"},
		{80 << 30, "80.0 GiB"},
		{1 << 40, "1.0 TiB"},
		{1 << 50, "1.0 PiB"},
		{1 << 60, "1.0 EiB"},
		{math.MaxInt64, "8.0 EiB"},
		{-1, "-1 B"},
		{-1536, "-1.5 KiB"},
		{math.MinInt64, "-8.0 EiB"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			assert.Equal(t, tt.want, Bytes(tt.n), "Bytes(%d)", tt.n)
		})
	}
}

func TestRate(t *testing.T) {
	assert.Equal(t, "2.0 MiB/s", Rate(4<<20, 2*time.Second))
	assert.Equal(t, "512 B/s", Rate(256, 500*time.Millisecond))
	assert.Equal(t, "n/a", Rate(1<<20, 0), "no time: no rate")
}
