package supervisor

import (
	"context"
	"errors"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

// fail fail-stops the worker for a fault that is not itself an integrity
// failure, such as a lost device or a panicking GPU actor. The cause is
// recorded in the critical WorkerStopped record and returned by Err; it is
// logged at debug level only, so that the embedder, who reports Err, prints
// it once.
func (r *Runtime) fail(cause error) {
	r.cfg.Logger.Debug("fail-stop", "cause", cause)
	r.beginStop(cause)
}

// failIntegrity records an integrity failure as critical, durably, and then
// fail-stops the worker.
func (r *Runtime) failIntegrity(cause error) {
	rec := audit.Record{Event: audit.EventSealVerificationFailed, Severity: audit.SeverityCritical, Fields: map[string]any{"error": cause.Error()}}
	var ie *messages.IntegrityError
	if errors.As(cause, &ie) {
		rec.Fields["shard_id"] = ie.ShardID
		rec.Fields["device"] = ie.Device
		rec.Fields["reason"] = ie.Reason
		if ie.Reason == messages.ReasonDigestMismatch {
			rec.Fields["chunk"] = ie.Chunk
			rec.Fields["offset"] = ie.Offset
			rec.Fields["length"] = ie.Length
			rec.Fields["expected"] = ie.Expected
			rec.Fields["actual"] = ie.Actual
			if len(ie.Tensors) > 0 {
				rec.Fields["tensors"] = ie.Tensors
			}
		}
	} else {
		rec.Fields["reason"] = "device_fault"
	}
	if _, err := r.writeRecord(context.Background(), rec); err != nil {
		r.cfg.Logger.Error("critical audit record not durable", "err", err)
	}
	r.cfg.Logger.Debug("fail-stop", "cause", cause)
	r.beginStop(cause)
}
