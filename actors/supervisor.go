package actors

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vramseal/vramseal/messages"
)

// SupervisorConfig configures a runtime's supervisor actor.
type SupervisorConfig struct {
	// VerifierMaxRestarts and VerifierRestartWindow bound how often a
	// panicking verifier is restarted before it escalates.
	VerifierMaxRestarts   int
	VerifierRestartWindow time.Duration
	// FailStop stops the worker with a cause wrapping
	// messages.ErrSoftwareFault when an escalation reaches the supervisor.
	// It is called from the supervisor's mailbox and must not block on it.
	FailStop func(cause error)
	// Logger receives the supervisor's log lines.
	Logger *slog.Logger
}

// SupervisorRef is the handle of a runtime's supervisor actor, the root of
// its tree: the GPU actors and verifiers are its children.
type SupervisorRef struct {
	root    *actor.RootContext
	pid     *actor.PID
	stopped chan struct{}
}

// SpawnSupervisor starts the supervisor actor.
func SpawnSupervisor(system *actor.ActorSystem, cfg SupervisorConfig) (*SupervisorRef, error) {
	ref := &SupervisorRef{root: system.Root, stopped: make(chan struct{})}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &supervisorActor{
			cfg: cfg, ref: ref, kinds: map[string]childKind{},
			gpuStrategy:      newGPUStrategy(),
			verifierStrategy: newVerifierStrategy(cfg.VerifierMaxRestarts, cfg.VerifierRestartWindow),
		}
	})
	pid, err := system.Root.SpawnNamed(props, "supervisor")
	if err != nil {
		return nil, fmt.Errorf("spawn supervisor: %w", err)
	}
	ref.pid = pid
	return ref, nil
}

// SpawnGPU starts the GPU actor for one device as a child of the
// supervisor.
func (s *SupervisorRef) SpawnGPU(cfg GPUConfig) (*GPURef, error) {
	ref := &GPURef{index: cfg.Index, device: cfg.Device, live: newLiveIndex(), onAcquire: cfg.OnAcquire, stopped: make(chan struct{})}
	props := actor.PropsFromProducer(func() actor.Actor { return &gpuActor{cfg: cfg, ref: ref} })
	pid, err := s.spawn(props, fmt.Sprintf("gpu-%d", cfg.Index), kindGPU)
	if err != nil {
		return nil, err
	}
	ref.bind(s.root, pid)
	return ref, nil
}

// SpawnVerifier starts the background verifier of one device as a child
// of the supervisor.
func (s *SupervisorRef) SpawnVerifier(cfg VerifierConfig) (*VerifierRef, error) {
	ref := &VerifierRef{root: s.root, stopped: make(chan struct{})}
	props := actor.PropsFromProducer(func() actor.Actor { return &verifier{cfg: cfg, ref: ref} })
	pid, err := s.spawn(props, fmt.Sprintf("verifier-%d", cfg.GPU.Index()), kindVerifier)
	if err != nil {
		return nil, err
	}
	ref.pid = pid
	return ref, nil
}

func (s *SupervisorRef) spawn(props *actor.Props, name string, kind childKind) (*actor.PID, error) {
	req := &spawnChild{props: props, name: name, kind: kind, reply: make(chan spawnReply, 1)}
	s.root.Send(s.pid, req)
	select {
	case r := <-req.reply:
		if r.err != nil {
			return nil, fmt.Errorf("spawn %s: %w", name, r.err)
		}
		return r.pid, nil
	case <-s.stopped:
		return nil, fmt.Errorf("spawn %s: %w", name, messages.ErrStopped)
	}
}

// Stop stops the supervisor, and any child still running, and waits.
func (s *SupervisorRef) Stop() {
	s.root.Stop(s.pid)
	<-s.stopped
}

// supervisorMessage is implemented by every message the supervisor accepts.
type supervisorMessage interface{ supervisorMessage() }

// spawnChild asks the supervisor to spawn a child.
type spawnChild struct {
	props *actor.Props
	name  string
	kind  childKind
	reply chan spawnReply
}

type spawnReply struct {
	pid *actor.PID
	err error
}

func (*spawnChild) supervisorMessage() {}

var _ supervisorMessage = (*spawnChild)(nil)

// supervisorActor spawns the runtime's actors as its children and
// supervises them with protoactor's strategies; an escalation reaching it
// fail-stops the worker.
type supervisorActor struct {
	cfg              SupervisorConfig
	ref              *SupervisorRef
	kinds            map[string]childKind // by child PID ID
	gpuStrategy      actor.SupervisorStrategy
	verifierStrategy actor.SupervisorStrategy
}

// Receive handles one message.
func (s *supervisorActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *spawnChild:
		pid, err := c.SpawnNamed(m.props, m.name)
		if err == nil {
			s.kinds[pid.Id] = m.kind
		}
		m.reply <- spawnReply{pid: pid, err: err}
	case *actor.Terminated:
		delete(s.kinds, m.Who.Id)
	case *actor.Stopped:
		close(s.ref.stopped)
	}
}

// HandleFailure applies the failed child's strategy; protoactor calls it,
// in the supervisor's mailbox, for every failure of a child.
func (s *supervisorActor) HandleFailure(system *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, msg any) {
	kind := s.kinds[child.Id]
	strategy := s.gpuStrategy
	if kind == kindVerifier {
		strategy = s.verifierStrategy
	}
	e := escalating{Supervisor: sup, escalate: func() { s.escalated(sup, child, kind, reason) }}
	strategy.HandleFailure(system, e, child, rs, reason, msg)
}

// escalated fail-stops the worker for a child given up on, and stops the
// child. A GPU actor is not replaced: a fresh one would not know what its
// device holds; stopping, it frees everything its table names.
func (s *supervisorActor) escalated(sup actor.Supervisor, child *actor.PID, kind childKind, reason any) {
	cause := fmt.Errorf("%s panicked: %v: %w", child.Id, reason, messages.ErrSoftwareFault)
	if kind == kindVerifier {
		cause = fmt.Errorf("%s panicked more than %d times within %v, last: %v: %w",
			child.Id, s.cfg.VerifierMaxRestarts, s.cfg.VerifierRestartWindow, reason, messages.ErrSoftwareFault)
	}
	s.cfg.Logger.Error("escalation reached the supervisor", "child", child.Id, "panic", fmt.Sprint(reason))
	s.cfg.FailStop(cause)
	sup.StopChildren(child)
}
