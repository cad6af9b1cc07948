package audit

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/vramseal/vramseal/messages"
)

// MinTokenLen is the shortest worker token accepted, in bytes.
const MinTokenLen = 16

// auditKeyLabel separates the audit key from every other key derived from a
// worker token, such as the shard seal key.
const auditKeyLabel = "vramseal/v1/audit-log"

// genesisLabel is what the first record of a log chains from, with the
// worker ID appended.
const genesisLabel = "vramseal/v1/audit-genesis"

// Key is the secret that chains one worker's audit log. It lives in one
// buffer that Zero wipes; printed with any verb it shows only a fingerprint
// of the token.
type Key struct {
	secret      []byte
	workerID    string
	fingerprint string
}

// DeriveKey derives the audit key for workerID from the worker token with
// HKDF-SHA256 under its own label, so it differs from the worker's seal key
// and from every other worker's audit key.
func DeriveKey(token []byte, workerID string) (*Key, error) {
	if len(token) < MinTokenLen {
		return nil, fmt.Errorf("%w: token is %d bytes, need at least %d", messages.ErrConfig, len(token), MinTokenLen)
	}
	if workerID == "" {
		return nil, fmt.Errorf("%w: empty worker ID", messages.ErrConfig)
	}
	secret, err := hkdf.Key(sha256.New, token, nil, auditKeyLabel+"\x00"+workerID, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: derive audit key: %v", messages.ErrConfig, err)
	}
	sum := sha256.Sum256(token)
	return &Key{secret: secret, workerID: workerID, fingerprint: hex.EncodeToString(sum[:3])}, nil
}

// WorkerID is the worker the key was derived for.
func (k *Key) WorkerID() string { return k.workerID }

// Fingerprint is 6 hex characters of SHA-256 of the token, safe to log.
func (k *Key) Fingerprint() string { return k.fingerprint }

// Zero wipes the key. A zeroed key opens and verifies nothing.
func (k *Key) Zero() { clear(k.secret); k.secret = nil }

// String shows only the fingerprint.
func (k *Key) String() string {
	if k == nil {
		return "audit.Key(nil)"
	}
	return "audit.Key(" + k.fingerprint + ")"
}

// Format shows only the fingerprint, whatever the verb, so %x or %#v of a
// Key reveal nothing either.
func (k *Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// usable reports an error unless the key can chain records.
func (k *Key) usable() error {
	if k == nil || len(k.secret) == 0 {
		return fmt.Errorf("%w: audit key is missing or zeroed", messages.ErrConfig)
	}
	return nil
}

// newMAC returns an HMAC-SHA256 under the key.
func (k *Key) newMAC() hash.Hash { return hmac.New(sha256.New, k.secret) }

// genesis is the value the first record of the key's log chains from.
func (k *Key) genesis() [sha256.Size]byte {
	m := k.newMAC()
	m.Write([]byte(genesisLabel + "\x00" + k.workerID))
	var g [sha256.Size]byte
	m.Sum(g[:0])
	return g
}
