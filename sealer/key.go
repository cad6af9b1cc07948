package sealer

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/vramseal/vramseal/internal/secret"
)

// MinTokenLen is the shortest worker token accepted, in bytes.
const MinTokenLen = secret.MinTokenLen

// sealKeyInfo is the HKDF purpose of seal keys: it names the purpose and its
// version, so a key derived here differs from every other key derived from
// the same token.
const sealKeyInfo = "vramseal/v1/shard-record-hmac-sha256"

// Key is the secret that signs shard records. Its bytes live in a
// secret.Key: Zero wipes them, copies of a Key share them, and no printed,
// logged or marshalled form shows them.
type Key struct {
	secret *secret.Key
}

// DeriveKey derives the seal key of workerID from the worker token with
// secret.Derive under a fixed, versioned label, so that two workers never
// share a key. The token must be at least MinTokenLen bytes and workerID
// non-empty; otherwise the error wraps messages.ErrConfig. The token is not
// kept.
func DeriveKey(token []byte, workerID string) (*Key, error) {
	k, err := secret.Derive(token, sealKeyInfo, workerID)
	if err != nil {
		return nil, err
	}
	return &Key{secret: k}, nil
}

// usable reports whether k can sign: it exists, was derived, and is not
// zeroed.
func (k *Key) usable() bool { return k != nil && k.secret.Usable() }

// Zero wipes the key's bytes. A zeroed key signs and checks nothing. Zero on
// a nil Key does nothing. Call it once nothing signs or checks with the key
// any more: it must not race with Sign or CheckSignature.
func (k *Key) Zero() {
	if k != nil {
		k.secret.Zero()
	}
}

// Fingerprint is 6 hex characters of the SHA-256 of the token the key was
// derived from; it is safe to log.
func (k *Key) Fingerprint() string {
	if k == nil {
		return ""
	}
	return k.secret.Fingerprint()
}

// String names the key by its fingerprint only, and says if it is zeroed.
func (k *Key) String() string {
	if k == nil {
		return "sealer.Key(nil)"
	}
	return k.secret.Redacted("sealer.Key")
}

// GoString is String: the Go-syntax form must not show the key either.
func (k *Key) GoString() string { return k.String() }

// Format prints String whatever the verb, so that no verb, not even a wrong
// one such as %x, reaches the key's buffer. It takes a value so that Key
// values and structs embedding one are covered as well as pointers.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue makes slog show String.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText makes encoding/json and other encoders show String.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }
