package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// recordingSupervisor records what a strategy asks of a parent.
type recordingSupervisor struct {
	calls     []string
	escalated any
}

func (s *recordingSupervisor) Children() []*actor.PID        { return nil }
func (s *recordingSupervisor) RestartChildren(...*actor.PID) { s.calls = append(s.calls, "restart") }
func (s *recordingSupervisor) StopChildren(...*actor.PID)    { s.calls = append(s.calls, "stop") }
func (s *recordingSupervisor) ResumeChildren(...*actor.PID)  { s.calls = append(s.calls, "resume") }
func (s *recordingSupervisor) EscalateFailure(reason, _ any) {
	s.calls = append(s.calls, "escalate")
	s.escalated = reason
}

// TestVerifierStrategyEscalatesPastItsRestarts defends the bounded
// intensity: restarts within the budget, then a stop that escalates (where
// protoactor's one-for-one strategy would only stop the child).
func TestVerifierStrategyEscalatesPastItsRestarts(t *testing.T) {
	strategy := restartWithin{maxRestarts: 3, window: time.Minute}
	sup := &recordingSupervisor{}
	child := actor.NewPID("local", "supervisor/verifiers/verifier-0")
	rs := actor.NewRestartStatistics()
	for range 4 {
		strategy.HandleFailure(nil, sup, child, rs, "boom", nil)
	}
	assert.Equal(t, []string{"restart", "restart", "restart", "stop", "escalate"}, sup.calls)
	cause, ok := sup.escalated.(error)
	require.True(t, ok)
	assert.ErrorIs(t, cause, messages.ErrSoftwareFault)
	assert.ErrorContains(t, cause, "verifier-0 panicked more than 3 times within 1m0s, last: boom")
}

// TestGPUStrategyEscalatesAtOnce defends that a GPU actor is never
// restarted: it is stopped and its failure escalates on the first panic.
func TestGPUStrategyEscalatesAtOnce(t *testing.T) {
	sup := &recordingSupervisor{}
	child := actor.NewPID("local", "supervisor/gpus/gpu-0")
	escalateAtOnce{}.HandleFailure(nil, sup, child, actor.NewRestartStatistics(), "boom", nil)
	assert.Equal(t, []string{"stop", "escalate"}, sup.calls)
	cause, ok := sup.escalated.(error)
	require.True(t, ok)
	assert.ErrorIs(t, cause, messages.ErrSoftwareFault)
	assert.NotErrorIs(t, cause, messages.ErrDeviceFault)
}

// TestAnEscalationReachingTheTopFailStops defends the root's strategy: the
// worker fail-stops with the escalated cause, a software fault.
func TestAnEscalationReachingTheTopFailStops(t *testing.T) {
	var failed []error
	strategy := failStop{fail: func(err error) { failed = append(failed, err) }, logger: slog.New(slog.DiscardHandler)}
	sup := &recordingSupervisor{}
	parent := actor.NewPID("local", "supervisor/gpus")
	strategy.HandleFailure(nil, sup, parent, actor.NewRestartStatistics(), "not an error", nil)
	require.Len(t, failed, 1)
	assert.ErrorIs(t, failed[0], messages.ErrSoftwareFault, "any panic value is a software fault")
	assert.Equal(t, []string{"resume"}, sup.calls, "the parent goes on watching its children")
}
