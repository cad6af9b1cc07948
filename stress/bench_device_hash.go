package stress

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/parallel"
	"github.com/vramseal/vramseal/sealer"
)

// deviceHashPasses is how many passes over the shards each timed round of
// deviceHashing makes, per path.
const deviceHashPasses = 3

// errDigestChanged means a bench pass hashed a chunk to another digest than
// the one it was written with: a bug in the path measured, never expected.
var errDigestChanged = errors.New("bench: a chunk's digest changed")

// hashedShard is one allocation that deviceHashing hashes, with its chunk
// digests as host hashing computed them when it was written.
type hashedShard struct {
	handle cuda.Handle
	size   int64
	sums   [][sha256.Size]byte
}

// deviceHashScrub compares, on a Sim, hashing ScrubShards shards where they
// lie (cuda.ChunkHasher) with copying them out to hash on the host, as the
// scrub does.
func (b *bencher) deviceHashScrub(ctx context.Context, _ float64) (BenchResult, error) {
	return b.deviceHashing(ctx, deviceHashScrubRow, b.cfg.ScrubShards, b.cfg.ScrubBytes)
}

// deviceHashVerify is deviceHashScrub for Verify of one VerifyBytes shard.
func (b *bencher) deviceHashVerify(ctx context.Context, _ float64) (BenchResult, error) {
	return b.deviceHashing(ctx, deviceHashVerifyRow, 1, b.cfg.VerifyBytes)
}

// deviceHashing writes shards shards of total bytes in all onto a
// prefaulted Sim and hashes every 4 MiB chunk of them, on one worker per
// core, both ways in alternating rounds: copied out with Read and hashed
// on the host, and hashed where they lie with HashChunks. Each way takes
// its best round. Every digest is checked against the one written. It
// measures through package cuda directly: the runtime's verifier does not
// hash in place yet.
func (b *bencher) deviceHashing(ctx context.Context, row BenchTarget, shards int, total int64) (BenchResult, error) {
	sim, err := cuda.NewSim(cuda.SimConfig{Name: "bench device hashing", Capacity: total, Prefault: true})
	if err != nil {
		return BenchResult{}, err
	}
	defer sim.Close()
	set, err := b.writeShards(sim, shards, total/int64(shards))
	if err != nil {
		return BenchResult{}, err
	}
	copyOut, inPlace := copyOutHash(sim), inPlaceHash(sim)
	var copyRate, deviceRate float64
	var readByDevice int64
	for range b.cfg.Rounds {
		rate, err := b.hashPasses(ctx, set, copyOut)
		if err != nil {
			return BenchResult{}, err
		}
		copyRate = max(copyRate, rate)
		before := sim.BytesRead()
		if rate, err = b.hashPasses(ctx, set, inPlace); err != nil {
			return BenchResult{}, err
		}
		deviceRate = max(deviceRate, rate)
		readByDevice += sim.BytesRead() - before
	}
	res := atLeast(row, "MB/s", deviceRate, copyRate,
		fmt.Sprintf("%d shard(s), %s in all, on one prefaulted Sim, %s chunks on %d workers, best of %d rounds of %d passes each way; reference is copying each chunk out (Read) and hashing it on the host; measured through package cuda directly (the scrub and Verify rows above take the in-place path on a Sim too); bytes read out while hashing in place: %d",
			len(set), humanBytes(total), humanBytes(sealer.DefaultChunkSize), b.cores, b.cfg.Rounds, deviceHashPasses, readByDevice))
	if readByDevice != 0 {
		res.Pass = false
	}
	return res, nil
}

// writeShards allocates shards allocations of size bytes on sim, fills them
// from the data pool and records their chunk digests.
func (b *bencher) writeShards(sim *cuda.Sim, shards int, size int64) ([]hashedShard, error) {
	set := make([]hashedShard, shards)
	buf := make([]byte, sealer.DefaultChunkSize)
	for i := range set {
		h, err := sim.Allocate(size)
		if err != nil {
			return nil, err
		}
		set[i] = hashedShard{handle: h, size: size}
		data := &cycleReader{pool: b.pool, pos: (i * 7919) % len(b.pool), left: size}
		for off := int64(0); off < size; off += sealer.DefaultChunkSize {
			chunk := buf[:min(sealer.DefaultChunkSize, size-off)]
			if _, err := io.ReadFull(data, chunk); err != nil {
				return nil, err
			}
			if err := sim.Write(h, off, chunk); err != nil {
				return nil, err
			}
			set[i].sums = append(set[i].sums, sealer.SumChunk(chunk))
		}
	}
	return set, nil
}

// chunkHash hashes the n bytes at off of shard s one way; buf is the
// worker's staging buffer of one chunk.
type chunkHash func(buf []byte, s hashedShard, off, n int64) ([sha256.Size]byte, error)

// copyOutHash copies a chunk out of sim with Read and hashes it on the host.
func copyOutHash(sim *cuda.Sim) chunkHash {
	return func(buf []byte, s hashedShard, off, n int64) ([sha256.Size]byte, error) {
		if err := sim.Read(s.handle, off, buf[:n]); err != nil {
			return [sha256.Size]byte{}, err
		}
		return sealer.SumChunk(buf[:n]), nil
	}
}

// inPlaceHash hashes a chunk where it lies in sim, with HashChunks.
func inPlaceHash(sim *cuda.Sim) chunkHash {
	return func(_ []byte, s hashedShard, off, n int64) ([sha256.Size]byte, error) {
		sums, err := sim.HashChunks(s.handle, off, n, n)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		return sums[0], nil
	}
}

// hashPasses hashes every chunk of set deviceHashPasses times with hash on
// one worker per core, pooling the chunks of all shards, and returns the
// rate in MB/s.
func (b *bencher) hashPasses(ctx context.Context, set []hashedShard, hash chunkHash) (float64, error) {
	type job struct{ shard, chunk int }
	var jobs []job
	var bytes int64
	for i, s := range set {
		for c := range s.sums {
			jobs = append(jobs, job{i, c})
		}
		bytes += s.size
	}
	start := time.Now()
	for range deviceHashPasses {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		queue := parallel.NewQueue(len(jobs))
		var wg sync.WaitGroup
		errs := make([]error, b.cores)
		for w := range b.cores {
			wg.Go(func() {
				buf := make([]byte, sealer.DefaultChunkSize)
				for k, ok := queue.Next(); ok; k, ok = queue.Next() {
					s := set[jobs[k].shard]
					off := int64(jobs[k].chunk) * sealer.DefaultChunkSize
					sum, err := hash(buf, s, off, min(sealer.DefaultChunkSize, s.size-off))
					if err == nil && sum != s.sums[jobs[k].chunk] {
						err = fmt.Errorf("%w: chunk %d at offset %d", errDigestChanged, jobs[k].chunk, off)
					}
					if err != nil {
						errs[w] = err
						return
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
	}
	return mbps(bytes*deviceHashPasses, time.Since(start)), nil
}
