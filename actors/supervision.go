package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// childKind tells the supervisor's children apart, for their strategies.
type childKind int

const (
	kindGPU childKind = iota + 1
	kindVerifier
)

// newGPUStrategy is protoactor's one-for-one strategy deciding to escalate
// at once: a GPU actor's table is the truth about its device, so one that
// panicked is never replaced by a fresh, empty one.
func newGPUStrategy() actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.EscalateDirective })
}

// newVerifierStrategy is protoactor's one-for-one strategy restarting a
// panicking verifier, at most maxRestarts times within window. Past that
// the strategy stops the child, which the supervisor turns into an
// escalation (see escalating).
func newVerifierStrategy(maxRestarts int, window time.Duration) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(maxRestarts, window, func(any) actor.Directive { return actor.RestartDirective })
}

// escalating is the supervisor as its children's strategies see it: a
// child given up on, by escalation or by a stop past its restart
// intensity, is escalated to the supervisor, which fail-stops the worker.
type escalating struct {
	actor.Supervisor
	escalate func()
}

// EscalateFailure hands the failure to the supervisor.
func (e escalating) EscalateFailure(_, _ any) { e.escalate() }

// StopChildren is how a one-for-one strategy gives up on a child that
// failed too often: an escalation too.
func (e escalating) StopChildren(...*actor.PID) { e.escalate() }
