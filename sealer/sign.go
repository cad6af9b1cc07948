package sealer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// Sign signs every field of s under key and stores the signature in s.
func Sign(key *Key, s *Shard) error {
	if err := checkRecord(key, s); err != nil {
		return err
	}
	s.signature = mac(key, s)
	return nil
}

// CheckSignature checks s's signature under key in constant time.
func CheckSignature(key *Key, s *Shard) error {
	if err := checkRecord(key, s); err != nil {
		return err
	}
	if len(s.signature) == 0 {
		return fmt.Errorf("shard %q: %w", s.ID, messages.ErrNotSealed)
	}
	if !hmac.Equal(s.signature, mac(key, s)) {
		return fmt.Errorf("shard %q: signature mismatch: %w", s.ID, messages.ErrSealVerificationFailed)
	}
	return nil
}

func checkRecord(key *Key, s *Shard) error {
	if key == nil || len(key.secret) == 0 {
		return fmt.Errorf("%w: no key", messages.ErrConfig)
	}
	if s.ID == "" || s.Size <= 0 || len(s.Digest) != 64 {
		return fmt.Errorf("%w: incomplete shard record", messages.ErrInvalidInput)
	}
	return nil
}

func mac(key *Key, s *Shard) []byte {
	h := hmac.New(sha256.New, key.secret)
	put := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	num := func(v int64) { var b [8]byte; binary.BigEndian.PutUint64(b[:], uint64(v)); put(b[:]) }
	put([]byte("vramseal-shard-v1"))
	put([]byte(s.ID))
	num(int64(s.Device))
	num(s.Size)
	put([]byte(s.Digest))
	put([]byte(s.ChunkRoot))
	num(s.ChunkSize)
	num(s.SealedAt.UnixNano())
	put([]byte(s.ModelRef))
	num(int64(s.ShardIndex))
	num(int64(s.TotalShards))
	return h.Sum(nil)
}
