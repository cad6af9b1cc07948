package actors

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// GPURef is how callers talk to one GPU actor. Every call sends a request
// with its own reply channel and waits for the answer or for the actor to
// stop. Calls that change the device wait for their answer even if the
// caller's context ends, because the answer may carry memory someone must
// own; they are quick, since nothing slow runs in the actor's mailbox.
type GPURef struct {
	index   int
	root    *actor.RootContext
	pid     *actor.PID
	stopped chan struct{}
	// leftover holds the shards the actor freed as it stopped; it is written
	// before stopped closes.
	leftover []sealer.Shard
}

// SpawnGPU starts the GPU actor for one device under the given supervision
// strategy.
func SpawnGPU(root *actor.RootContext, cfg GPUConfig, strategy actor.SupervisorStrategy) (*GPURef, error) {
	ref := &GPURef{index: cfg.Index, root: root, stopped: make(chan struct{})}
	props := actor.PropsFromProducer(func() actor.Actor { return newGPUActor(cfg, ref) }, actor.WithGuardian(strategy))
	pid, err := root.SpawnNamed(props, fmt.Sprintf("gpu-%d", cfg.Index))
	if err != nil {
		return nil, fmt.Errorf("spawn GPU actor %d: %w", cfg.Index, err)
	}
	ref.pid = pid
	return ref, nil
}

// Index is the device index the actor owns.
func (g *GPURef) Index() int { return g.index }

// Allocate reserves size bytes for a pending seal named id and copies first
// (which may be empty) to its start, in one step. The caller must not touch
// first until Allocate returns.
func (g *GPURef) Allocate(id string, size int64, first []byte) error {
	return await(g, &allocate{id: id, size: size, first: first, reply: make(chan error, 1)})
}

// Write copies data into the pending seal id at offset. The caller must not
// touch data until Write returns.
func (g *GPURef) Write(id string, offset int64, data []byte) error {
	return await(g, &write{id: id, offset: offset, data: data, reply: make(chan error, 1)})
}

// Commit makes the pending seal named by record.ID a sealed shard.
func (g *GPURef) Commit(record sealer.Shard, chunks []sealer.ChunkDigest) error {
	return await(g, &commit{record: record, chunks: chunks, reply: make(chan error, 1)})
}

// Abort frees the pending seal id.
func (g *GPURef) Abort(id string) error {
	return await(g, &abort{id: id, reply: make(chan error, 1)})
}

// Read copies len(buf) bytes of shard id (generation gen) at offset into buf.
func (g *GPURef) Read(id string, gen uint64, offset int64, buf []byte) error {
	return await(g, &read{id: id, gen: gen, offset: offset, buf: buf, reply: make(chan error, 1)})
}

// Release frees the sealed shard id.
func (g *GPURef) Release(id string) error {
	return await(g, &release{id: id, reply: make(chan error, 1)})
}

// Drain frees every shard and pending seal, and returns the shards freed.
func (g *GPURef) Drain() ([]sealer.Shard, error) {
	r, err := ask(context.Background(), g, &drain{reply: make(chan drainReply, 1)})
	if err != nil {
		return nil, err
	}
	return r.freed, r.err
}

// Lookup returns the actor's view of shard id.
func (g *GPURef) Lookup(ctx context.Context, id string) (ShardView, error) {
	r, err := ask(ctx, g, &lookup{id: id, reply: make(chan lookupReply, 1)})
	if err != nil {
		return ShardView{}, err
	}
	return r.view, r.err
}

// Capacity returns the device's accounting.
func (g *GPURef) Capacity(ctx context.Context) (messages.Capacity, error) {
	return ask(ctx, g, &capacityQuery{reply: make(chan messages.Capacity, 1)})
}

// Snapshot lists every sealed shard, sorted by ID.
func (g *GPURef) Snapshot(ctx context.Context) ([]ShardView, error) {
	return ask(ctx, g, &snapshot{reply: make(chan []ShardView, 1)})
}

// MarkVerified notes that shard id, generation gen, fully matched at the
// time given. It does not wait.
func (g *GPURef) MarkVerified(v ShardView) {
	g.root.Send(g.pid, &markVerified{id: v.Record.ID, gen: v.Gen, at: v.LastVerified})
}

// Stop stops the actor and waits until it has stopped. It returns the shards
// the actor still held and freed on its way out (none after a Drain).
func (g *GPURef) Stop() []sealer.Shard {
	g.root.Stop(g.pid)
	<-g.stopped
	return g.leftover
}

// Stopped is closed once the actor has stopped.
func (g *GPURef) Stopped() <-chan struct{} { return g.stopped }

// replyRequest is a request whose answer comes back on reply.
type replyRequest[T any] interface {
	gpuRequest
	replyChan() chan T
}

func (m *allocate) replyChan() chan error                  { return m.reply }
func (m *write) replyChan() chan error                     { return m.reply }
func (m *commit) replyChan() chan error                    { return m.reply }
func (m *abort) replyChan() chan error                     { return m.reply }
func (m *read) replyChan() chan error                      { return m.reply }
func (m *release) replyChan() chan error                   { return m.reply }
func (m *lookup) replyChan() chan lookupReply              { return m.reply }
func (m *capacityQuery) replyChan() chan messages.Capacity { return m.reply }
func (m *snapshot) replyChan() chan []ShardView            { return m.reply }
func (m *drain) replyChan() chan drainReply                { return m.reply }

// await sends a request that changes the device and waits for its answer.
func await(g *GPURef, req replyRequest[error]) error {
	err, stopErr := ask(context.Background(), g, req)
	if stopErr != nil {
		return stopErr
	}
	return err
}

// ask sends req and waits for its answer, the actor's stop, or ctx's end.
func ask[T any](ctx context.Context, g *GPURef, req replyRequest[T]) (T, error) {
	var zero T
	select {
	case <-g.stopped:
		return zero, fmt.Errorf("device %d: %w", g.index, messages.ErrStopped)
	default:
	}
	g.root.Send(g.pid, req)
	select {
	case r := <-req.replyChan():
		return r, nil
	case <-g.stopped:
		// The actor may have answered just before it stopped.
		select {
		case r := <-req.replyChan():
			return r, nil
		default:
			return zero, fmt.Errorf("device %d: %w", g.index, messages.ErrStopped)
		}
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	}
}
