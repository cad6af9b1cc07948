package messages

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wrappings are the ways a layer may hand a sentinel upward.
var wrappings = map[string]func(error) error{
	"bare":         func(err error) error { return err },
	"wrapped once": func(err error) error { return fmt.Errorf("seal %q: %w", "s1", err) },
	"wrapped twice": func(err error) error {
		return fmt.Errorf("runtime: %w", fmt.Errorf("gpu 0: %w", err))
	},
	"joined": func(err error) error { return errors.Join(errors.New("abort failed"), err) },
}

func TestIsRetriableAndIsFatal(t *testing.T) {
	tests := []struct {
		err              error
		retriable, fatal bool
	}{
		{ErrInsufficientVRAM, true, false},
		{&InsufficientVRAMError{Device: 1, Needed: 2 << 30, Available: 1 << 30}, true, false},
		{ErrAllocationFailed, true, false},
		{ErrSealVerificationFailed, false, true},
		{ErrIntegrityViolation, false, true},
		{ErrPolicyViolation, false, true},
		{ErrDeviceFault, false, true},
		{ErrSoftwareFault, false, true},
		{&IntegrityError{ShardID: "x", Reason: ReasonDigestMismatch}, false, true},
		{ErrEvicted, false, false},
		{ErrLeaseHeld, false, false},
		{ErrInvalidInput, false, false},
		{ErrNotSealed, false, false},
		{ErrConfig, false, false},
		{ErrUnknownShard, false, false},
		{ErrDuplicateShard, false, false},
		{ErrStopped, false, false},
		{errors.New("insufficient VRAM"), false, false}, // same text, not the sentinel
	}
	for _, tt := range tests {
		for how, wrap := range wrappings {
			t.Run(tt.err.Error()+"/"+how, func(t *testing.T) {
				err := wrap(tt.err)
				assert.Equal(t, tt.retriable, IsRetriable(err), "IsRetriable")
				assert.Equal(t, tt.fatal, IsFatal(err), "IsFatal")
			})
		}
	}
	assert.False(t, IsRetriable(nil))
	assert.False(t, IsFatal(nil))
}

func TestFatalWinsWhenJoinedWithRetriable(t *testing.T) {
	err := errors.Join(ErrInsufficientVRAM, fmt.Errorf("verify: %w", ErrSealVerificationFailed))
	assert.True(t, IsFatal(err))
	assert.True(t, IsRetriable(err), "both kinds are reported; callers check IsFatal first")
}

func TestSentinelsAreDistinct(t *testing.T) {
	all := []error{ErrInvalidInput, ErrInsufficientVRAM, ErrAllocationFailed, ErrNotSealed,
		ErrSealVerificationFailed, ErrIntegrityViolation, ErrPolicyViolation, ErrConfig,
		ErrDeviceFault, ErrUnknownShard, ErrDuplicateShard, ErrStopped}
	texts := map[string]bool{}
	for i, a := range all {
		texts[a.Error()] = true
		for j, b := range all {
			assert.Equal(t, i == j, errors.Is(a, b), "%v is %v", a, b)
		}
	}
	assert.Len(t, texts, len(all), "every sentinel has its own message")
}

func TestInsufficientVRAMError(t *testing.T) {
	e := &InsufficientVRAMError{Device: 2, Needed: 3 << 30, Available: 1536 << 20}
	err := fmt.Errorf("seal %q: %w", "s1", e)

	assert.ErrorIs(t, err, ErrInsufficientVRAM)
	assert.NotErrorIs(t, err, ErrAllocationFailed)
	assert.NotErrorIs(t, err, ErrDeviceFault)

	var got *InsufficientVRAMError
	require.ErrorAs(t, err, &got)
	assert.Equal(t, 2, got.Device)
	assert.Equal(t, int64(3<<30), got.Needed)
	assert.Equal(t, int64(1536<<20), got.Available)

	msg := e.Error()
	assert.Contains(t, msg, "device 2")
	assert.Contains(t, msg, "needed 3221225472 bytes (3.0 GiB)")
	assert.Contains(t, msg, "available 1610612736 bytes (1.5 GiB)")
	assert.Contains(t, err.Error(), msg)

	var notThere *InsufficientVRAMError
	assert.False(t, errors.As(fmt.Errorf("x: %w", ErrInsufficientVRAM), &notThere),
		"the bare sentinel carries no numbers")
}

func TestHumanBytes(t *testing.T) {
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
			assert.Equal(t, tt.want, HumanBytes(tt.n), "HumanBytes(%d)", tt.n)
		})
	}
}

func TestHumanRate(t *testing.T) {
	assert.Equal(t, "2.0 MiB/s", HumanRate(4<<20, 2*time.Second))
	assert.Equal(t, "512 B/s", HumanRate(256, 500*time.Millisecond))
	assert.Equal(t, "n/a", HumanRate(1<<20, 0), "no time: no rate")
}
