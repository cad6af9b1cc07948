package messages

import (
	"errors"
	"fmt"
	"testing"

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
