package cuda

import (
	"crypto/sha256"
	"runtime"

	"github.com/vramseal/vramseal/internal/parallel"
)

var _ SpanHasher = (*Sim)(nil)

// HashChunks hashes the chunks where they lie in the Sim's memory; see
// HashSpans.
func (s *Sim) HashChunks(h Handle, offset, length, chunkSize int64) ([][sha256.Size]byte, error) {
	sums, err := s.HashSpans([]Span{{Handle: h, Offset: offset, Length: length, ChunkSize: chunkSize}})
	if err != nil {
		return nil, err
	}
	return sums[0], nil
}

// HashSpans hashes the chunks of every span where they lie in the Sim's
// memory, up to GOMAXPROCS chunks at once on host cores, straight or
// through a small cache-resident buffer, whichever its first chunks
// measured faster on this host (see hashChooser), and copies nothing out: BytesRead does not change, BytesHashed grows by the spans' lengths.
// A call takes one armed FailReads failure, as a Read would, so faults
// injected for readers reach hashers too.
func (s *Sim) HashSpans(spans []Span) ([][][sha256.Size]byte, error) {
	allocs, err := s.lookupSpans(spans)
	if err != nil {
		return nil, err
	}
	sums, _, err := NewSpanSums("sim", spans)
	if err != nil {
		return nil, err
	}
	err = SharedAll("sim", "hash", spans, allocs, func(mems []simMemory) error {
		if err := s.takeReadFailure(); err != nil {
			return err
		}
		var jobs []chunkJob
		for i, sp := range spans {
			data := mems[i].data[sp.Offset : sp.Offset+sp.Length]
			for c := range sums[i] {
				off := int64(c) * sp.ChunkSize
				jobs = append(jobs, chunkJob{data: data[off:min(off+sp.ChunkSize, sp.Length)], sum: &sums[i][c]})
			}
		}
		hashInPlace(jobs, s.hashing)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, sp := range spans {
		s.bytesHashed.Add(sp.Length)
	}
	return sums, nil
}

// lookupSpans finds each span's live allocation and checks its bounds.
func (s *Sim) lookupSpans(spans []Span) ([]*Allocation[simMemory], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked("hash"); err != nil {
		return nil, err
	}
	return s.table.Spans("hash", spans)
}

// chunkJob is one chunk to hash and where its digest goes.
type chunkJob struct {
	data []byte
	sum  *[sha256.Size]byte
}

// hashInPlace hashes every job the way c chooses, up to GOMAXPROCS at
// once, and returns when all are done.
func hashInPlace(jobs []chunkJob, c *hashChooser) {
	parallel.Each(runtime.GOMAXPROCS(0), len(jobs), func(i int) error {
		*jobs[i].sum = c.sum(jobs[i].data)
		return nil
	})
}
