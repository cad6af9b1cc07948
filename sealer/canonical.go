package sealer

import "encoding/binary"

// recordVersion opens every canonical record. A change to the encoding below
// gets a new version, so old and new signatures can never be confused.
const recordVersion = "vramseal/shard-record/v3"

// canonicalRecord encodes every signed field of s in a fixed order. Each
// field is its 8-byte big-endian length followed by its bytes; integers are
// 8-byte big-endian two's complement, and SealedAt is Unix seconds (8 bytes)
// then nanoseconds (4 bytes), so every instant time.Time can hold is encoded
// exactly; the tensor table is its digest (empty without one). Distinct
// records always encode differently.
func canonicalRecord(s *Shard) []byte {
	// 15 fields' length prefixes, six integers, the time, two digests and the
	// tensor table's: under 512 bytes besides the ID, version and model ref.
	b := make([]byte, 0, 512+len(recordVersion)+len(s.ID)+len(s.ModelRef))
	b = appendBytes(b, recordVersion)
	b = appendBytes(b, s.ID)
	b = appendInt(b, int64(s.Device))
	b = appendInt(b, s.Size)
	b = appendBytes(b, s.Digest)
	b = appendInt(b, s.ChunkSize)
	b = appendBytes(b, s.ChunkRoot)
	var at [12]byte
	binary.BigEndian.PutUint64(at[:8], uint64(s.SealedAt.Unix()))
	binary.BigEndian.PutUint32(at[8:], uint32(s.SealedAt.Nanosecond()))
	b = appendBytes(b, string(at[:]))
	b = appendBytes(b, s.ModelRef)
	b = appendInt(b, int64(s.ShardIndex))
	b = appendInt(b, int64(s.TotalShards))
	b = appendBytes(b, TensorsDigest(s.Tensors))
	b = appendInt(b, int64(s.Generation))
	return b
}

func appendBytes(b []byte, v string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
	return append(b, v...)
}

func appendInt(b []byte, v int64) []byte {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(v))
	return appendBytes(b, string(n[:]))
}
