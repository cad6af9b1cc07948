package stress

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vramseal/vramseal/share"
	"github.com/vramseal/vramseal/supervisor"
)

// serveShare starts a lease server over rt on a socket in a directory of
// its own; close stops it and removes the directory.
func serveShare(rt *supervisor.Runtime, tempDir string) (path string, close func() error, err error) {
	dir, err := os.MkdirTemp(tempDir, "vramseal-bench-share-")
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, "share.sock")
	srv, err := share.Listen(share.Config{Runtime: rt, Path: path, WorkerID: "bench", MaxClients: 1 << 16})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return path, func() error { return errors.Join(srv.Close(), os.RemoveAll(dir)) }, nil
}

// dialLeased connects n clients to path, each holding a lease on one of
// ids, in turn.
func dialLeased(ctx context.Context, path string, n int, ids []string) ([]*share.Client, []*share.RemoteLease, error) {
	clients := make([]*share.Client, 0, n)
	leases := make([]*share.RemoteLease, 0, n)
	for i := range n {
		c, err := share.Dial(ctx, path)
		if err != nil {
			return clients, leases, err
		}
		clients = append(clients, c)
		l, err := c.Acquire(ctx, ids[i%len(ids)], false)
		if err != nil {
			return clients, leases, err
		}
		leases = append(leases, l)
	}
	return clients, leases, nil
}

// closeClients closes every client.
func closeClients(clients []*share.Client) {
	for _, c := range clients {
		c.Close()
	}
}

// remoteAcquire seals one ShareShardBytes shard on a shareable Sim and times
// ShareAcquires acquires of it by a client in another goroutine, through
// the lease server, each mapped and its first byte read, then released;
// it fails if any byte was copied out of the device.
func (b *bencher) remoteAcquire(ctx context.Context, _ float64) (BenchResult, error) {
	cfg := b.cfg
	rt, sims, err := b.startSims(ctx, supervisor.RigConfig{Capacities: []int64{cfg.ShareShardBytes + 64*mib}, Shareable: true}, discardSink{}, nil)
	if err != nil {
		return BenchResult{}, err
	}
	var lat Latency
	var copied int64
	err = func() error {
		if _, err := b.sealPattern(ctx, rt.Seal, 0, "big", cfg.ShareShardBytes); err != nil {
			return err
		}
		path, closeServer, err := serveShare(rt, cfg.TempDir)
		if err != nil {
			return err
		}
		defer closeServer()
		c, err := share.Dial(ctx, path)
		if err != nil {
			return err
		}
		defer c.Close()
		before := sims[0].BytesRead()
		ds := make([]time.Duration, 0, cfg.ShareAcquires)
		for range cfg.ShareAcquires {
			t := time.Now()
			l, err := c.Acquire(ctx, "big", false)
			if err != nil {
				return err
			}
			m, err := l.Map()
			if err != nil {
				return err
			}
			_ = m[0]
			ds = append(ds, time.Since(t))
			if err := l.Release(ctx); err != nil {
				return err
			}
		}
		copied = sims[0].BytesRead() - before
		lat = summarize(ds)
		return nil
	}()
	if err := stopRuntime(rt, err); err != nil {
		return BenchResult{}, fmt.Errorf("bench remote acquire: %w", err)
	}
	res := p99Below(remoteAcquireRow, "ms", time.Millisecond, lat, remoteAcquireP99Target,
		fmt.Sprintf("%d acquires of one %s shard over the socket, each mapped and its first byte read; p50 %v, max %v; %d bytes copied off the device",
			lat.Count, humanBytes(cfg.ShareShardBytes), lat.P50.Round(time.Microsecond), lat.Max.Round(time.Microsecond), copied))
	if copied != 0 {
		res.Pass = false
	}
	return res, nil
}

// revocationReach has ShareRevokeClients clients hold a lease each, then
// fail-stops the runtime and times, for each, how long after the fail-stop
// began its revocation arrived.
func (b *bencher) revocationReach(ctx context.Context, _ float64) (BenchResult, error) {
	cfg := b.cfg
	rt, _, err := b.startSims(ctx, supervisor.RigConfig{Capacities: []int64{64 * mib}, Shareable: true}, discardSink{}, nil)
	if err != nil {
		return BenchResult{}, err
	}
	var lat Latency
	err = func() error {
		if _, err := b.sealPattern(ctx, rt.Seal, 0, "leased", leaseShardSize); err != nil {
			return err
		}
		path, closeServer, err := serveShare(rt, cfg.TempDir)
		if err != nil {
			return err
		}
		defer closeServer()
		clients, leases, err := dialLeased(ctx, path, cfg.ShareRevokeClients, []string{"leased"})
		defer closeClients(clients)
		if err != nil {
			return err
		}
		ds := make([]time.Duration, len(leases))
		var heard sync.WaitGroup
		start := time.Now()
		for i, l := range leases {
			heard.Go(func() {
				select {
				case <-l.Revoked():
					ds[i] = time.Since(start)
				case <-time.After(time.Minute):
					ds[i] = time.Minute
				}
			})
		}
		rt.FailStop(fmt.Errorf("bench: a planted fail-stop: %w", supervisor.ErrDeviceFault))
		heard.Wait()
		lat = summarize(ds)
		for _, l := range leases {
			_ = l.Release(ctx)
		}
		return nil
	}()
	if err := stopRuntime(rt, err); err != nil && !errors.Is(err, supervisor.ErrDeviceFault) {
		return BenchResult{}, fmt.Errorf("bench revocation: %w", err)
	}
	return p99Below(revocationRow, "ms", time.Millisecond, lat, revocationP99Target,
		fmt.Sprintf("%d clients holding a lease each, timed from FailStop to their revoke; p50 %v, max %v",
			lat.Count, lat.P50.Round(time.Microsecond), lat.Max.Round(time.Microsecond))), nil
}

// sharedScrub measures the scrub, as the scrub row does but on shareable
// memory, with ShareClients clients holding leases on its shards against
// none, alternating, the best run of each counting.
func (b *bencher) sharedScrub(ctx context.Context, _ float64) (BenchResult, error) {
	cfg := b.cfg
	var alone, shared float64
	for range cfg.Rounds {
		for _, clients := range []int{0, cfg.ShareClients} {
			rate, _, _, err := b.scrubRun(ctx, clients)
			if err != nil {
				return BenchResult{}, fmt.Errorf("bench scrub with clients: %w", err)
			}
			if clients == 0 {
				alone = max(alone, rate)
			} else {
				shared = max(shared, rate)
			}
		}
	}
	return atLeast(sharedScrubRow, "MB/s", shared, alone,
		fmt.Sprintf("%d clients, each holding a lease on one of %d shards (%s in all, shareable memory), against none; best of %d runs each",
			cfg.ShareClients, cfg.ScrubShards, humanBytes(cfg.ScrubBytes), cfg.Rounds)), nil
}
