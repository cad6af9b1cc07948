package sealer

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// MinTokenLen is the shortest worker token accepted, in bytes.
const MinTokenLen = 16

// sealKeyLabel separates seal keys from every other key derived from a token.
const sealKeyLabel = "vramseal/v1/shard-seal"

// Key is the secret that signs shard records. It lives in one buffer that
// Zero wipes; its String and GoString forms reveal nothing of it.
type Key struct {
	secret      []byte
	fingerprint string
}

// DeriveKey derives the seal key for workerID from the worker token with
// HKDF-SHA256, so that two workers never share a key.
func DeriveKey(token []byte, workerID string) (*Key, error) {
	if len(token) < MinTokenLen {
		return nil, fmt.Errorf("%w: token is %d bytes, need at least %d", messages.ErrConfig, len(token), MinTokenLen)
	}
	secret, err := hkdf.Key(sha256.New, token, nil, sealKeyLabel+"\x00"+workerID, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: derive key: %v", messages.ErrConfig, err)
	}
	sum := sha256.Sum256(token)
	return &Key{secret: secret, fingerprint: hex.EncodeToString(sum[:3])}, nil
}

// Zero wipes the key. A zeroed key signs nothing.
func (k *Key) Zero() { clear(k.secret); k.secret = nil }

// Fingerprint is 6 hex characters of SHA-256 of the token, safe to log.
func (k *Key) Fingerprint() string { return k.fingerprint }

// String shows only the fingerprint.
func (k *Key) String() string { return "sealer.Key(" + k.fingerprint + ")" }

// GoString shows only the fingerprint.
func (k *Key) GoString() string { return k.String() }
