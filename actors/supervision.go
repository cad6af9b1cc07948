package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vramseal/vramseal/messages"
)

// The runtime's actor tree has a parent per strategy, each spawned with
// actor.WithSupervisor: the supervisor at the root fail-stops on an
// escalation (failStop), the GPU parent escalates a GPU actor's failure at
// once (escalateAtOnce), and the verifier parent restarts a verifier a
// bounded number of times before it escalates (restartWithin). A failure
// escalates as an error wrapping messages.ErrSoftwareFault that names the
// child.

// escalateAtOnce is the GPU parent's strategy. A GPU actor's table is the
// truth about its device, so one that panicked is never replaced by a
// fresh, empty one: it is stopped, freeing what its table names that no
// lease holds, and its failure escalates.
type escalateAtOnce struct{}

// HandleFailure stops the child and escalates.
func (escalateAtOnce) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, msg any) {
	sup.StopChildren(child)
	sup.EscalateFailure(fmt.Errorf("%s panicked: %v: %w", child.Id, reason, messages.ErrSoftwareFault), msg)
}

// restartWithin is the verifier parent's strategy: a verifier that panics
// is restarted, at most maxRestarts times within window; one more failure
// in that window stops it and escalates. (protoactor's one-for-one
// strategy, past its limit, stops the child without escalating.)
type restartWithin struct {
	maxRestarts int
	window      time.Duration
}

// HandleFailure restarts the child, or stops it and escalates.
func (s restartWithin) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, msg any) {
	rs.Fail()
	if rs.NumberOfFailures(s.window) <= s.maxRestarts {
		sup.RestartChildren(child)
		return
	}
	sup.StopChildren(child)
	sup.EscalateFailure(fmt.Errorf("%s panicked more than %d times within %v, last: %v: %w",
		child.Id, s.maxRestarts, s.window, reason, messages.ErrSoftwareFault), msg)
}

// failStop is the strategy of the supervisor at the root of the tree: an
// escalation reaching it fail-stops the worker. The parent that escalated
// (which only spawns and watches its children) is resumed.
type failStop struct {
	fail   func(cause error)
	logger *slog.Logger
}

// HandleFailure fail-stops the worker.
func (s failStop) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	cause, ok := reason.(error)
	if !ok || !errors.Is(cause, messages.ErrSoftwareFault) {
		cause = fmt.Errorf("%s panicked: %v: %w", child.Id, reason, messages.ErrSoftwareFault)
	}
	s.logger.Error("escalation reached the supervisor", "from", child.Id, "cause", cause.Error())
	s.fail(cause)
	sup.ResumeChildren(child)
}

var _ = []actor.SupervisorStrategy{escalateAtOnce{}, restartWithin{}, failStop{}}
