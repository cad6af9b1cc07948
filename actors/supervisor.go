package actors

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vramseal/vramseal/messages"
)

// SupervisorConfig configures a runtime's actor tree.
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

// SupervisorRef is the handle of a runtime's actor tree: the supervisor at
// its root, and under it the GPU parent, whose children are the GPU actors,
// and the verifier parent, whose children are the verifiers.
type SupervisorRef struct {
	root      *actor.RootContext
	logger    *slog.Logger
	pid       *actor.PID
	gpus      parentRef
	verifiers parentRef
}

// parentRef is a parent actor's PID, and the channel that closes once it
// has stopped.
type parentRef struct {
	pid     *actor.PID
	stopped <-chan struct{}
}

// SpawnSupervisor starts the supervisor and, as its children, the GPU
// parent and the verifier parent, each with its strategy.
func SpawnSupervisor(system *actor.ActorSystem, cfg SupervisorConfig) (*SupervisorRef, error) {
	props := func(strategy actor.SupervisorStrategy) *actor.Props {
		return actor.PropsFromProducer(newParent, actor.WithSupervisor(strategy))
	}
	pid, err := system.Root.SpawnNamed(props(failStop{fail: cfg.FailStop, logger: cfg.Logger}), "supervisor")
	if err != nil {
		return nil, fmt.Errorf("spawn supervisor: %w", err)
	}
	s := &SupervisorRef{root: system.Root, logger: cfg.Logger, pid: pid}
	top := parentRef{pid: pid}
	if s.gpus, err = s.spawn(top, props(escalateAtOnce{}), "gpus"); err == nil {
		s.verifiers, err = s.spawn(top, props(restartWithin{maxRestarts: cfg.VerifierMaxRestarts, window: cfg.VerifierRestartWindow}), "verifiers")
	}
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// SpawnGPU starts the GPU actor for one device as a child of the GPU
// parent.
func (s *SupervisorRef) SpawnGPU(cfg GPUConfig) (*GPURef, error) {
	live := newLiveIndex()
	stopReply := make(chan stopReport, 1)
	mailbox := startOwnGoroutine()
	props := actor.PropsFromProducer(func() actor.Actor {
		return &gpuActor{cfg: cfg, live: live, stopReply: stopReply, mailbox: mailbox}
	}, actor.WithDispatcher(mailbox))
	child, err := s.spawn(s.gpus, props, fmt.Sprintf("gpu-%d", cfg.Index))
	if err != nil {
		mailbox.close()
		mailbox.wait()
		return nil, err
	}
	return &GPURef{
		index: cfg.Index, device: cfg.Device, live: live, onAcquire: cfg.OnAcquire,
		send:    func(msg any) { s.root.Send(child.pid, msg) },
		stop:    func() { s.root.Stop(child.pid) },
		stopped: child.stopped, stopReply: stopReply, mailbox: mailbox,
	}, nil
}

// SpawnVerifier starts the background verifier of one device as a child
// of the verifier parent.
func (s *SupervisorRef) SpawnVerifier(cfg VerifierConfig) (*VerifierRef, error) {
	props := actor.PropsFromProducer(func() actor.Actor { return &verifier{cfg: cfg} })
	child, err := s.spawn(s.verifiers, props, fmt.Sprintf("verifier-%d", cfg.GPU.Index()))
	if err != nil {
		return nil, err
	}
	return &VerifierRef{root: s.root, pid: child.pid, stopped: child.stopped}, nil
}

// spawn has parent spawn a child, and returns it.
func (s *SupervisorRef) spawn(parent parentRef, props *actor.Props, name string) (parentRef, error) {
	req := &spawnChild{props: props, name: name, reply: make(chan spawnReply, 1)}
	s.root.Send(parent.pid, req)
	select {
	case r := <-req.reply:
		if r.err != nil {
			return parentRef{}, fmt.Errorf("spawn %s: %w", name, r.err)
		}
		return parentRef{pid: r.pid, stopped: r.stopped}, nil
	case <-parent.stopped: // nil, so never, for the supervisor
		return parentRef{}, fmt.Errorf("spawn %s: %w", name, messages.ErrStopped)
	}
}

// Stop stops the supervisor, and any actor of the tree still running, and
// waits.
func (s *SupervisorRef) Stop() {
	if err := s.root.StopFuture(s.pid).Wait(); err != nil {
		s.logger.Warn("the actor tree did not stop in time", "err", err)
	}
}

// parentMessage is implemented by every message a parent accepts;
// TestMessageSwitchesAreExhaustive checks that its Receive handles each.
type parentMessage interface{ parentMessage() }

// spawnChild asks a parent to spawn a child.
type spawnChild struct {
	props *actor.Props
	name  string
	reply chan spawnReply
}

// spawnReply is the child spawned, with the channel its parent closes once
// it has stopped.
type spawnReply struct {
	pid     *actor.PID
	stopped <-chan struct{}
	err     error
}

func (*spawnChild) parentMessage() {}

var _ parentMessage = (*spawnChild)(nil)

// parent is an actor that spawns children on request and tells, by closing
// the channel it returned with each, when one has stopped. What it does
// when a child fails is the strategy it was spawned with.
type parent struct {
	stopped map[string]chan struct{} // by child PID ID
}

func newParent() actor.Actor { return &parent{stopped: map[string]chan struct{}{}} }

// Receive handles one message.
func (p *parent) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *spawnChild:
		pid, err := c.SpawnNamed(m.props, m.name)
		r := spawnReply{pid: pid, err: err}
		if err == nil {
			stopped := make(chan struct{})
			p.stopped[pid.Id] = stopped
			r.stopped = stopped
		}
		m.reply <- r
	case *actor.Terminated:
		if stopped, ok := p.stopped[m.Who.Id]; ok {
			close(stopped)
			delete(p.stopped, m.Who.Id)
		}
	}
}
