package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

// checkChunk feeds a chunk of a seal's data, as it streams, to the seal's
// check, if it has one.
func checkChunk(req messages.SealRequest, chunk []byte) {
	if req.Check != nil {
		req.Check.Write(chunk)
	}
}

// checkModel asks the seal's check, if any, whether the data that hashed to
// whole is the published model. A refusal wraps messages.ErrModelRejected.
func checkModel(req messages.SealRequest, whole string) error {
	if req.Check == nil {
		return nil
	}
	err := req.Check.Result(whole)
	if err != nil && !errors.Is(err, messages.ErrModelRejected) {
		err = fmt.Errorf("%w: %w", messages.ErrModelRejected, err)
	}
	return err
}

// modelRejectedRecord is the critical record of a seal refused because its
// data is not the published model: file, expected and actual digests, and
// the source of the expectation.
func modelRejectedRecord(req messages.SealRequest, err error) audit.Record {
	f := map[string]any{"shard_id": req.ID, "device": req.Device, "size": req.Size, "error": err.Error()}
	var rej *messages.RejectedError
	if errors.As(err, &rej) {
		f["file"], f["expected"], f["actual"], f["source"] = rej.File, rej.Expected, rej.Actual, rej.Source
		if rej.End > 0 {
			f["offset"], f["length"] = rej.Start, rej.End-rej.Start
		}
	}
	return audit.Record{Event: audit.EventModelRejected, Severity: audit.SeverityCritical, Fields: f}
}

// RecordModelVerified makes a ModelVerified record durable: a model's signed
// manifest verified (signer key fingerprint, subject name and digest,
// serialization method) and every file sealed from it matched. Callers
// record it once all the model's seals have returned.
func (r *Runtime) RecordModelVerified(ctx context.Context, v ModelVerified) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.calls.leave()
	f := map[string]any{
		"key_fingerprint": v.KeyFingerprint, "subject": v.Subject, "subject_digest": v.SubjectDigest,
		"method": v.Method, "source": v.Source, "files": v.Files,
	}
	if len(v.Uncovered) > 0 {
		f["uncovered"] = v.Uncovered
	}
	return r.record(ctx, audit.Record{Event: audit.EventModelVerified, Severity: audit.SeverityInfo, Fields: f})
}
