package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// deadLetterThrottle is how long protoactor's dead-letter throttle keeps its
// timer goroutine. Dead letters only occur while actors stop, so a short
// window keeps that goroutine from outliving the runtime by much.
const deadLetterThrottle = 10 * time.Millisecond

// NewSystem returns an actor system that logs through logger instead of
// protoactor's coloured stdout logger.
func NewSystem(logger *slog.Logger) *actor.ActorSystem {
	return actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }),
		actor.WithDeadLetterThrottleInterval(deadLetterThrottle),
	)
}
