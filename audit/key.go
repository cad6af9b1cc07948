package audit

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"log/slog"

	"github.com/vramseal/vramseal/internal/secret"
	"github.com/vramseal/vramseal/messages"
)

// MinTokenLen is the shortest worker token accepted, in bytes.
const MinTokenLen = secret.MinTokenLen

// auditKeyLabel separates the audit key from every other key derived from a
// worker token, such as the shard seal key.
const auditKeyLabel = "vramseal/v1/audit-log"

// genesisLabel is what the first record of a log chains from, with the
// worker ID appended.
const genesisLabel = "vramseal/v1/audit-genesis"

// Key is the secret that chains one worker's audit log. Its bytes live in a
// secret.Key that Zero wipes; printed with any verb, as a value, a pointer
// or a field, or logged, it shows only a fingerprint of the token.
type Key struct {
	secret   *secret.Key
	workerID string
}

// DeriveKey derives the audit key for workerID from the worker token with
// secret.Derive under its own label, so it differs from the worker's seal
// key and from every other worker's audit key.
func DeriveKey(token []byte, workerID string) (*Key, error) {
	k, err := secret.Derive(token, auditKeyLabel, workerID)
	if err != nil {
		return nil, err
	}
	return &Key{secret: k, workerID: workerID}, nil
}

// WorkerID is the worker the key was derived for.
func (k *Key) WorkerID() string { return k.workerID }

// Fingerprint is 6 hex characters of SHA-256 of the token, safe to log.
func (k *Key) Fingerprint() string { return k.secret.Fingerprint() }

// Zero wipes the key. A zeroed key opens and verifies nothing.
func (k *Key) Zero() {
	if k != nil {
		k.secret.Zero()
	}
}

// String shows only the fingerprint.
func (k *Key) String() string {
	if k == nil {
		return "audit.Key(nil)"
	}
	return k.secret.Redacted("audit.Key")
}

// GoString is String: the Go-syntax form must not show the key either.
func (k *Key) GoString() string { return k.String() }

// Format shows only the fingerprint, whatever the verb, so %x or %#v of a
// Key reveal nothing either. Its value receiver covers Key values and
// structs embedding one as well as pointers.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue makes slog show String.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText makes encoding/json and other encoders show String.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// usable reports an error unless the key can chain records.
func (k *Key) usable() error {
	if k == nil || !k.secret.Usable() {
		return fmt.Errorf("%w: audit key is missing or zeroed", messages.ErrConfig)
	}
	return nil
}

// newMAC returns an HMAC-SHA256 under the key.
func (k *Key) newMAC() hash.Hash { return k.secret.NewMAC() }

// genesis is the value the first record of the key's log chains from.
func (k *Key) genesis() [sha256.Size]byte {
	m := k.newMAC()
	m.Write([]byte(genesisLabel + "\x00" + k.workerID))
	var g [sha256.Size]byte
	m.Sum(g[:0])
	return g
}
