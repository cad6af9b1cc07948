package gpuhealth

import (
	"context"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Runtime is the part of a vramseal runtime that GPU health acts on;
// *supervisor.Runtime is one.
type Runtime interface {
	// FailStop stops the worker for cause, an error wrapping a messages
	// sentinel, without waiting for the stop.
	FailStop(cause error)
	// Evict frees, and audits, every shard on device, for reason.
	Evict(ctx context.Context, device int, reason string) ([]sealer.Shard, error)
}

// ShardLister lists a runtime's live shards, for readiness;
// *supervisor.Runtime is one.
type ShardLister interface {
	Shards(ctx context.Context) ([]messages.ShardStatus, error)
}
