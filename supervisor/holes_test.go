package supervisor

// Regression tests for the holes found by using the public API as a hostile
// caller would (issue 10). Each failed on the runtime before the fix.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/internal/testwait"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// stalledReader gives its first n bytes, then blocks, like a hung network
// filesystem, until unblock is closed; then it ends early.
type stalledReader struct {
	data    []byte
	started chan struct{} // closed once the reader blocks
	once    sync.Once
	unblock chan struct{}
}

func newStalledReader(n int64) *stalledReader {
	return &stalledReader{data: cudatest.Pattern(uint64(n), n), started: make(chan struct{}), unblock: make(chan struct{})}
}

func (s *stalledReader) Read(p []byte) (int, error) {
	if len(s.data) > 0 {
		n := copy(p, s.data)
		s.data = s.data[n:]
		return n, nil
	}
	s.once.Do(func() { close(s.started) })
	<-s.unblock
	return 0, io.ErrUnexpectedEOF
}

// sealStalled starts a seal of size bytes whose reader stalls after given
// bytes, and waits until it does. The seal's error arrives on the channel.
func sealStalled(t *testing.T, w *testWorker, id string, size, given int64) (*stalledReader, <-chan error) {
	t.Helper()
	r := newStalledReader(given)
	done := make(chan error, 1)
	go func() {
		_, err := w.Seal(context.Background(), messages.SealRequest{ID: id, Data: r, Size: size})
		done <- err
	}()
	select {
	case <-r.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the seal never read")
	}
	return r, done
}

// Hole 1: a seal blocked in its reader kept a fail-stop from completing.
func TestStalledReaderDelaysNeitherFailStopNorStop(t *testing.T) {
	for _, tc := range []struct {
		name        string
		size, given int64
	}{
		{"one chunk, stalled before any device work", 32 * KiB, 0},
		{"many chunks, stalled with memory allocated", 10 * 64 * KiB, 3 * 64 * KiB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWorker(t, []int64{16 * MiB}, nil)
			w.seal(t, 0, "healthy", 128*KiB)
			r, sealErr := sealStalled(t, w, "stalled", tc.size, tc.given)
			stopping := time.Now()
			w.FailStop(fmt.Errorf("injected: %w", messages.ErrDeviceFault))
			select {
			case <-w.Done():
			case <-time.After(time.Second):
				t.Fatal("the fail-stop did not complete within 1 s")
			}
			t.Logf("fail-stop completed in %v with a seal stalled in its reader", time.Since(stopping))
			assert.ErrorIs(t, w.Err(), messages.ErrDeviceFault)
			assert.Zero(t, w.sims[0].Outstanding(), "everything not under a lease is freed")
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			assert.NoError(t, w.Stop(ctx), "Stop returns at once")
			select {
			case err := <-sealErr:
				t.Fatalf("the seal returned before its reader did: %v", err)
			default:
			}
			close(r.unblock)
			assert.ErrorIs(t, testwait.Receive(t, sealErr, "end of the stalled seal"), messages.ErrStopped, "the seal ends once its reader returns")
		})
	}
}

// Hole 2: stalled seals held the whole staging budget, so the scrub waited
// for a buffer forever and a planted flip went undetected.
func TestStalledSealsDoNotDelayTheScrub(t *testing.T) {
	const interval = 20 * time.Millisecond
	w := newTestWorker(t, []int64{64 * MiB}, func(c *Config) { c.VerifyInterval = interval })
	victim := w.seal(t, 0, "victim", 256*KiB)
	stalls := int(stagingBytes(64*KiB) / (64 * KiB)) // enough to spend the whole budget
	var readers []*stalledReader
	var results []<-chan error
	for i := range stalls {
		r, res := sealStalled(t, w, fmt.Sprintf("stalled-%d", i), 4*64*KiB, 0)
		readers = append(readers, r)
		results = append(results, res)
	}
	require.NoError(t, w.sims[0].FlipBit(w.sims[0].Allocations()[0].Handle, 100*KiB, 3))
	flipped := time.Now()
	select {
	case <-w.Done():
	case <-time.After(10 * time.Second): // the normal bound is a few intervals
		t.Fatalf("%d stalled seals kept the scrub from detecting a flip", stalls)
	}
	t.Logf("flip detected in %v beside %d stalled seals", time.Since(flipped), stalls)
	var ie *messages.IntegrityError
	require.ErrorAs(t, w.Err(), &ie)
	assert.Equal(t, victim.ID, ie.ShardID)
	for i, r := range readers {
		close(r.unblock)
		assert.Error(t, testwait.Receive(t, results[i], "end of a stalled seal"))
	}
}

// Hole 3: a genuine, validly signed record of a shard since released (and
// its ID sealed again, or the worker restarted) fail-stopped the worker.
func TestStaleRecordsAreUnknownShards(t *testing.T) {
	key := func(c *Config) {
		var err error
		c.Key, err = sealer.DeriveKey([]byte("same-token-across-restarts-0123"), "test-worker")
		require.NoError(t, err)
	}
	w := newTestWorker(t, []int64{16 * MiB}, key)
	ctx := context.Background()
	old := w.seal(t, 0, "x", 128*KiB)
	require.NoError(t, w.Free(ctx, old))
	assert.ErrorIs(t, w.Verify(ctx, old), messages.ErrUnknownShard, "released")
	current := w.seal(t, 0, "x", 128*KiB)
	assert.ErrorIs(t, w.Verify(ctx, old), messages.ErrUnknownShard, "the ID is sealed again")
	assert.ErrorIs(t, w.Free(ctx, old), messages.ErrUnknownShard, "a retried release of the old record")
	require.NoError(t, w.Verify(ctx, current), "the new shard is untouched")
	assert.Nil(t, w.Err())
	assert.Empty(t, w.events(audit.EventSealVerificationFailed))

	restarted := newTestWorker(t, []int64{16 * MiB}, key)
	again := restarted.seal(t, 0, "x", 128*KiB)
	assert.ErrorIs(t, restarted.Verify(ctx, current), messages.ErrUnknownShard, "a record from before the restart")
	assert.ErrorIs(t, restarted.Free(ctx, current), messages.ErrUnknownShard)
	require.NoError(t, restarted.Verify(ctx, again))
	assert.Nil(t, restarted.Err())
}

// Hole 4: two concurrent releases of record A while its ID is sealed again
// as B could free B: the release checked the record, then freed by ID.
func TestStaleReleaseNeverFreesTheNewerShard(t *testing.T) {
	t.Parallel()
	iterations := 10_000
	if testing.Short() {
		iterations = 500
	}
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	ctx := context.Background()
	data := cudatest.Pattern(1, KiB)
	for i := range iterations {
		a, err := w.Seal(ctx, messages.SealRequest{ID: "x", Data: bytes.NewReader(data), Size: KiB})
		require.NoError(t, err)
		var wg sync.WaitGroup
		var released [2]error
		for j := range released {
			wg.Go(func() { released[j] = w.Free(ctx, a) })
		}
		var b sealer.Shard
		wg.Go(func() {
			for {
				s, err := w.Seal(ctx, messages.SealRequest{ID: "x", Data: bytes.NewReader(data), Size: KiB})
				if err == nil {
					b = s
					return
				}
				if !errors.Is(err, messages.ErrDuplicateShard) {
					t.Errorf("reseal: %v", err)
					return
				}
			}
		})
		wg.Wait()
		require.Nil(t, w.Err(), "iteration %d", i)
		ok := 0
		for _, err := range released {
			if err == nil {
				ok++
			} else {
				require.ErrorIs(t, err, messages.ErrUnknownShard, "iteration %d", i)
			}
		}
		require.Equal(t, 1, ok, "iteration %d: exactly one release of A frees it", i)
		require.NoError(t, w.Verify(ctx, b), "iteration %d: B is live", i)
		require.NoError(t, w.Free(ctx, b))
	}
	assert.Zero(t, w.sims[0].Outstanding())
}

// Hole 5: under evictions, VramSealed was made durable before the commit,
// so the trail recorded seals of shards that never became live, then a
// failure with the wrong reason; metrics counted such a seal twice.
func TestTrailUnderEvictionTellsTheTruth(t *testing.T) {
	const seals = 1000
	w := newTestWorker(t, []int64{256 * MiB}, nil)
	ctx := context.Background()
	stop := make(chan struct{})
	var evicting sync.WaitGroup
	evicting.Go(func() {
		pace := time.NewTicker(time.Millisecond)
		defer pace.Stop()
		for {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			_, err := w.Evict(ctx, 0, "contention")
			assert.NoError(t, err)
		}
	})
	var sealing sync.WaitGroup
	for g := range 20 {
		sealing.Go(func() {
			for i := g; i < seals; i += 20 {
				size := int64(1+i%4) * 64 * KiB
				_, err := w.Seal(ctx, messages.SealRequest{ID: fmt.Sprintf("s-%04d", i), Data: bytes.NewReader(cudatest.Pattern(uint64(i), size)), Size: size})
				if err != nil {
					assert.ErrorIs(t, err, messages.ErrEvicted, "seal %d", i)
				}
			}
		})
	}
	sealing.Wait()
	close(stop)
	evicting.Wait()
	require.Nil(t, w.Err())

	live := map[string]bool{}
	shards, err := w.Shards(ctx)
	require.NoError(t, err)
	for _, s := range shards {
		live[s.ID] = true
	}
	sealedAt := map[string]int{}
	outcomes := map[string]int{}
	var failedSealed []string
	for i, r := range w.audit.Records() {
		id, _ := r.Fields["shard_id"].(string)
		switch r.Event {
		case audit.EventVramSealed:
			sealedAt[id] = i
			outcomes[id]++
		case audit.EventVramAllocationFailed:
			outcomes[id]++
			assert.Equal(t, "evicted", r.Fields["reason"], "the real reason for %s", id)
			if _, ok := sealedAt[id]; ok {
				failedSealed = append(failedSealed, id)
			}
		case audit.EventVramDeallocated:
			if at, ok := sealedAt[id]; ok && at < i {
				delete(sealedAt, id)
			}
		}
	}
	var lies []string
	for id := range sealedAt {
		if !live[id] {
			lies = append(lies, id)
		}
	}
	assert.Empty(t, lies, "every VramSealed has a live shard or a later VramDeallocated")
	assert.Empty(t, failedSealed, "no seal is recorded both sealed and failed")
	for i := range seals {
		id := fmt.Sprintf("s-%04d", i)
		assert.Equal(t, 1, outcomes[id], "%s: one outcome per seal, so metrics count it once", id)
	}
}

// Hole 6: a signed record altered into a malformed one was refused with
// ErrInvalidInput, with no critical record and no fail-stop.
func TestAlteredMalformedRecordsAreIntegrityFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alter func(*sealer.Shard)
	}{
		{"device -1", func(s *sealer.Shard) { s.Device = -1 }},
		{"size 0", func(s *sealer.Shard) { s.Size = 0 }},
		{"uppercase digest", func(s *sealer.Shard) { s.Digest = strings.ToUpper(s.Digest) }},
		{"chunk size 65537", func(s *sealer.Shard) { s.ChunkSize = 65537 }},
		{"a .. ID", func(s *sealer.Shard) { s.ID = ".." }},
	} {
		for _, viaJSON := range []bool{false, true} {
			name := tc.name
			if viaJSON {
				name += ", through JSON"
			}
			t.Run(name, func(t *testing.T) {
				w := newTestWorker(t, []int64{16 * MiB}, nil)
				s := w.seal(t, 0, "genuine", 128*KiB)
				tc.alter(&s)
				if viaJSON {
					var decoded sealer.Shard
					require.NoError(t, decoded.UnmarshalJSON(mustJSON(t, s, false)), "a signed record decodes; its check is the runtime's")
					s = decoded
				}
				assert.ErrorIs(t, w.Verify(context.Background(), s), messages.ErrSealVerificationFailed)
				w.waitStopped(t)
				assert.ErrorIs(t, w.Err(), messages.ErrSealVerificationFailed)
				failed := w.events(audit.EventSealVerificationFailed)
				require.Len(t, failed, 1)
				assert.Equal(t, audit.SeverityCritical, failed[0].Severity)
			})
		}
	}
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	var unsigned sealer.Shard
	assert.NoError(t, unsigned.UnmarshalJSON(mustJSON(t, w.seal(t, 0, "genuine", 128*KiB), true)))
	assert.ErrorIs(t, w.Verify(context.Background(), unsigned), messages.ErrNotSealed)
	assert.Nil(t, w.Err(), "an unsigned record stops nothing")
}

// mustJSON is s's JSON, without its signature if unsigned is set.
func mustJSON(t *testing.T, s sealer.Shard, unsigned bool) []byte {
	t.Helper()
	b, err := s.MarshalJSON()
	require.NoError(t, err)
	if !unsigned {
		return b
	}
	i := bytes.Index(b, []byte(`,"signature"`))
	require.Positive(t, i)
	return append(b[:i:i], '}')
}

// lineBound is an audit sink that, like the durable log, refuses a record
// longer than one audit line.
type lineBound struct{ *audit.Memory }

func (l lineBound) Record(ctx context.Context, r audit.Record) error {
	if len(r.String()) > audit.MaxLineBytes {
		return fmt.Errorf("%w: audit record %s is longer than %d bytes", messages.ErrInvalidInput, r.Event, audit.MaxLineBytes)
	}
	return l.Memory.Record(ctx, r)
}

// Hole 7: an Evict whose reason was longer than an audit line freed nothing.
func TestEvictWithAHugeReasonStillFrees(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, func(c *Config) { c.Audit = lineBound{c.Audit.(*audit.Memory)} })
	w.seal(t, 0, "a", 128*KiB)
	w.seal(t, 0, "b", 64*KiB)
	huge := strings.Repeat("é", audit.MaxLineBytes)
	freed, err := w.Evict(context.Background(), 0, huge)
	require.NoError(t, err)
	assert.Len(t, freed, 2)
	assert.Zero(t, w.sims[0].Outstanding(), "Evict always frees")
	violations := w.events(audit.EventPolicyViolation)
	require.Len(t, violations, 1)
	reason := violations[0].Fields["reason"].(string)
	assert.LessOrEqual(t, len(reason), MaxEvictReason, "the reason is cut to fit")
	assert.True(t, strings.HasPrefix(huge, reason), "on a character boundary")
}

// Seals stalled in their readers before any data hold no staging memory: as
// many as the staging budget has chunks leave room for a seal whose reader
// is well, on the one-chunk path and the streaming one.
func TestSealsStalledBeforeDataHoldNoStaging(t *testing.T) {
	for _, size := range []int64{32 * KiB, 4 * 64 * KiB} {
		w := newTestWorker(t, []int64{64 * MiB}, nil)
		stalls := int(stagingBytes(64*KiB) / (64 * KiB))
		var readers []*stalledReader
		var results []<-chan error
		for i := range stalls {
			r, res := sealStalled(t, w, fmt.Sprintf("stalled-%d", i), size, 0)
			readers = append(readers, r)
			results = append(results, res)
		}
		sealed := make(chan error, 1)
		go func() {
			_, err := w.Seal(context.Background(), messages.SealRequest{ID: "well", Data: bytes.NewReader(make([]byte, size)), Size: size})
			sealed <- err
		}()
		select {
		case err := <-sealed:
			require.NoError(t, err, "size %d", size)
		case <-time.After(10 * time.Second):
			t.Fatalf("size %d: %d seals stalled before their first byte held the staging budget", size, stalls)
		}
		for i, r := range readers {
			close(r.unblock)
			assert.ErrorIs(t, testwait.Receive(t, results[i], "end of a stalled seal"), messages.ErrInvalidInput, "size %d: the stalled reader ended early", size)
		}
	}
}

// A panic in the read-ahead, while it holds a staging buffer, fail-stops the
// worker and gives the buffer back.
func TestAPanicInTheReadAheadReturnsItsBuffer(t *testing.T) {
	var once sync.Once
	w := newTestWorker(t, []int64{16 * MiB}, func(c *Config) {
		c.hooks.staged = func() { once.Do(func() { panic("injected read-ahead panic") }) }
	})
	size := int64(10 * 64 * KiB)
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "s", Data: bytes.NewReader(make([]byte, size)), Size: size})
	require.ErrorIs(t, err, messages.ErrSoftwareFault)
	w.waitStopped(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range stagingBytes(64*KiB) / (64 * KiB) {
		_, err := w.sealBuffers.Get(ctx, 64*KiB)
		require.NoError(t, err, "chunk %d of the staging budget is free again", i)
	}
}
