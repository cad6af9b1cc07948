package auditdoc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/auditdoc"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

// TestEveryRecordTheRuntimeWritesIsCatalogued drives a runtime through the
// operations that write records (seal, verify, a verified lease, a seal
// that does not fit, evict, free, a verified model, a flipped bit and its
// fail-stop) and checks each record, as the Sink gets it, against the
// document's catalogue.
func TestEveryRecordTheRuntimeWritesIsCatalogued(t *testing.T) {
	c, err := auditdoc.Load()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{Capacities: []int64{8 << 20}})
	require.NoError(t, err)
	defer rig.Stop(context.Background())

	seal := func(id string, size int) (sealer.Shard, error) {
		data := make([]byte, size)
		rand.Read(data)
		return rig.Seal(ctx, messages.SealRequest{Device: 0, ID: id, Data: bytes.NewReader(data), Size: int64(size), ModelRef: "m"})
	}
	a, err := seal("a", 64<<10)
	require.NoError(t, err)
	require.NoError(t, rig.Verify(ctx, a))
	lease, err := rig.Acquire(ctx, a, supervisor.Verified())
	require.NoError(t, err)
	lease.Release()
	_, err = seal("too-big", 16<<20)
	require.ErrorIs(t, err, messages.ErrInsufficientVRAM)
	_, err = rig.Evict(ctx, 0, "a test evicts the device")
	require.NoError(t, err)
	b, err := seal("b", 64<<10)
	require.NoError(t, err)
	require.NoError(t, rig.Free(ctx, b))
	require.NoError(t, rig.RecordModelVerified(ctx, messages.ModelVerified{KeyFingerprint: "k", Subject: "m", SubjectDigest: "d", Method: "files", Source: "model.sig", Files: 1}))
	c3, err := seal("c", 64<<10)
	require.NoError(t, err)
	_, _, _, err = rig.Sims[0].FlipRandomBit()
	require.NoError(t, err)
	require.True(t, errors.Is(rig.Verify(ctx, c3), messages.ErrSealVerificationFailed))
	select {
	case <-rig.Done():
	case <-ctx.Done():
		require.FailNow(t, "the runtime did not fail-stop")
	}

	seen := map[string]bool{}
	for _, r := range rig.Audit.Records() {
		seen[r.Event] = true
		assert.NoError(t, c.Check(r.Event, r.Severity.String(), r.Fields), "%s", r)
	}
	for _, e := range []string{"WorkerStarted", "VramSealed", "SealVerified", "VramAllocationFailed", "PolicyViolation",
		"VramDeallocated", "ModelVerified", "SealVerificationFailed", "WorkerStopped"} {
		assert.True(t, seen[e], "the run wrote no %s record", e)
	}
}
