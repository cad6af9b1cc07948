package sealer

import (
	"github.com/vramseal/vramseal/internal/secret"
)

// MinTokenLen is the shortest worker token accepted, in bytes.
const MinTokenLen = secret.MinTokenLen

// sealPurpose is the purpose of seal keys. Its label names the purpose and
// its version, so a key derived here differs from every other key derived
// from the same token.
type sealPurpose struct{}

// Label is the HKDF label of seal keys.
func (sealPurpose) Label() string { return "vramseal/v1/shard-record-hmac-sha256" }

// Kind is how a seal key prints.
func (sealPurpose) Kind() string { return "sealer.Key" }

// Key is the secret that signs shard records: a secret.Key of its own
// purpose. Zero wipes its bytes (in every copy), Fingerprint is safe to
// log, and no printed, logged or marshalled form shows the bytes.
type Key = secret.Key[sealPurpose]

// DeriveKey derives the seal key of workerID from the worker token with
// HKDF-SHA256 under a fixed, versioned label, so that two workers never
// share a key. The token must be at least MinTokenLen bytes and workerID
// non-empty; otherwise the error wraps messages.ErrConfig. The token is not
// kept.
func DeriveKey(token []byte, workerID string) (*Key, error) {
	return secret.Derive[sealPurpose](token, workerID)
}
