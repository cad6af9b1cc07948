package sealer

import (
	"crypto/hmac"
	"fmt"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
)

// Sign checks that s is a well-formed record, sets SealedAt to UTC (the same
// instant), and stores in s the HMAC-SHA256 under key of the canonical,
// versioned encoding of every field. A nil or zeroed key gives an error
// wrapping messages.ErrConfig; a malformed record (bad ID, size <= 0, digest
// or chunk root not 64 lowercase hex digits, bad chunk size, negative device,
// bad placement or model ref) one wrapping messages.ErrInvalidInput.
func Sign(key *Key, s *Shard) error {
	if err := checkInputs(key, s); err != nil {
		return err
	}
	s.SealedAt = s.SealedAt.UTC()
	s.signature = mac(key, s)
	return nil
}

// CheckSignature checks s against its signature under key, in constant time.
// A signed record is checked against its signature before anything else, so
// that any alteration, one that leaves the record malformed too, returns an
// error wrapping messages.ErrSealVerificationFailed. An unsigned record gives
// the errors of Sign for a malformed one, else one wrapping
// messages.ErrNotSealed.
func CheckSignature(key *Key, s *Shard) error {
	if !key.Usable() {
		return fmt.Errorf("%w: no seal key, or it was zeroed", messages.ErrConfig)
	}
	if s == nil {
		return fmt.Errorf("%w: no shard record", messages.ErrInvalidInput)
	}
	if !s.Signed() {
		if err := validateRecord(s); err != nil {
			return err
		}
		return fmt.Errorf("shard %s: %w", untrusted.Quote(s.ID), messages.ErrNotSealed)
	}
	if !hmac.Equal(s.signature, mac(key, s)) {
		return fmt.Errorf("shard %s: signature does not match the record: %w", untrusted.Quote(s.ID), messages.ErrSealVerificationFailed)
	}
	return validateRecord(s)
}

func checkInputs(key *Key, s *Shard) error {
	if !key.Usable() {
		return fmt.Errorf("%w: no seal key, or it was zeroed", messages.ErrConfig)
	}
	if s == nil {
		return fmt.Errorf("%w: no shard record", messages.ErrInvalidInput)
	}
	return validateRecord(s)
}

func mac(key *Key, s *Shard) []byte {
	h := key.NewMAC()
	h.Write(canonicalRecord(s))
	return h.Sum(nil)
}
