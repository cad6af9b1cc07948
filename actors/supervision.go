package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vramseal/vramseal/messages"
)

// FailStop is how an actor's supervisor reports that the worker must stop.
type FailStop func(cause error)

// gpuStrategy supervises GPU actors: a GPU actor's table is the truth about
// its device, so one that panics is stopped at once (it frees what it still
// names on its way out) and the worker fail-stops.
type gpuStrategy struct{ failStop FailStop }

// NewGPUStrategy returns the supervision strategy for GPU actors.
func NewGPUStrategy(failStop FailStop) actor.SupervisorStrategy {
	return &gpuStrategy{failStop: failStop}
}

// HandleFailure stops the failed GPU actor and fail-stops the worker.
func (s *gpuStrategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	sup.StopChildren(child)
	s.failStop(fmt.Errorf("GPU actor %s panicked: %v: %w", child.Id, reason, messages.ErrDeviceFault))
}

// verifierStrategy restarts a verifier that panics, at most MaxRestarts times
// within Within; beyond that the worker fail-stops, since it can no longer
// prove its memory intact.
type verifierStrategy struct {
	maxRestarts int
	within      time.Duration
	failStop    FailStop
}

// NewVerifierStrategy returns the supervision strategy for verifiers.
func NewVerifierStrategy(maxRestarts int, within time.Duration, failStop FailStop) actor.SupervisorStrategy {
	return &verifierStrategy{maxRestarts: maxRestarts, within: within, failStop: failStop}
}

// HandleFailure restarts the verifier or, past the intensity, stops it and
// fail-stops the worker.
func (s *verifierStrategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, _ any) {
	rs.Fail()
	if rs.NumberOfFailures(s.within) <= s.maxRestarts {
		sup.RestartChildren(child)
		return
	}
	sup.StopChildren(child)
	s.failStop(fmt.Errorf("verifier %s panicked %d times within %v, last: %v: %w",
		child.Id, rs.NumberOfFailures(s.within), s.within, reason, messages.ErrIntegrityViolation))
}
