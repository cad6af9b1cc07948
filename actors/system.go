package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// deadLetterThrottle is how long protoactor's dead-letter throttle keeps its
// timer goroutine. Dead letters only occur while actors stop, so a short
// window keeps that goroutine from outliving the runtime by much.
const deadLetterThrottle = 10 * time.Millisecond

// NewSystem returns an actor system that logs through logger instead of
// protoactor's coloured stdout logger. protoactor's info lines (the system
// starting, an actor recovering, dead letters, which a tick or a late
// request to an actor that is stopping becomes) are the framework's own
// bookkeeping, so they are logged at debug level; its warnings and errors
// keep their level.
func NewSystem(logger *slog.Logger) *actor.ActorSystem {
	quiet := slog.New(demoteInfo{logger.Handler()})
	return actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }),
		actor.WithDeadLetterThrottleInterval(deadLetterThrottle),
	)
}

// demoteInfo is a slog.Handler that passes info records on at debug level.
type demoteInfo struct{ next slog.Handler }

func (h demoteInfo) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, demoted(l))
}

func (h demoteInfo) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demoted(r.Level)
	return h.next.Handle(ctx, r)
}

func (h demoteInfo) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteInfo{h.next.WithAttrs(attrs)}
}

func (h demoteInfo) WithGroup(name string) slog.Handler { return demoteInfo{h.next.WithGroup(name)} }

func demoted(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}
