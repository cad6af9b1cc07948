package secret

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"

	"github.com/vramseal/vramseal/messages"
)

// MinTokenLen is the shortest worker token accepted, in bytes.
const MinTokenLen = 16

// Len is the size of a derived key, in bytes.
const Len = sha256.Size

// Key is a derived key. Its bytes live in one buffer that Zero wipes;
// copies of a Key share the buffer, so Zero on any copy disarms them all.
// Whatever the fmt verb, as a value, a pointer or a field, and through
// slog or encoding/json, a Key shows only the fingerprint of the token it
// was derived from.
type Key struct {
	bytes       *[Len]byte
	fingerprint string
}

// Derive derives the key for purpose and workerID from token with
// HKDF-SHA256: the info is purpose, a NUL, and workerID, so keys of two
// purposes or two workers never coincide. token must be at least
// MinTokenLen bytes and workerID non-empty, else the error wraps
// messages.ErrConfig. The token is not kept; the caller zeroes it.
func Derive(token []byte, purpose, workerID string) (*Key, error) {
	if len(token) < MinTokenLen {
		return nil, fmt.Errorf("%w: worker token is %d bytes, need at least %d", messages.ErrConfig, len(token), MinTokenLen)
	}
	if workerID == "" {
		return nil, fmt.Errorf("%w: worker ID is empty: each worker needs its own ID to get its own key", messages.ErrConfig)
	}
	derived, err := hkdf.Key(sha256.New, token, nil, purpose+"\x00"+workerID, Len)
	if err != nil {
		return nil, fmt.Errorf("%w: derive %s key: %v", messages.ErrConfig, purpose, err)
	}
	b := new([Len]byte)
	copy(b[:], derived)
	clear(derived)
	sum := sha256.Sum256(token)
	return &Key{bytes: b, fingerprint: hex.EncodeToString(sum[:3])}, nil
}

// Usable reports whether k can key a MAC: it exists, was derived, and is
// not zeroed. The zero test runs in constant time.
func (k *Key) Usable() bool {
	var zero [Len]byte
	return k != nil && k.bytes != nil && subtle.ConstantTimeCompare(k.bytes[:], zero[:]) == 0
}

// NewMAC returns an HMAC-SHA256 keyed with k. k must be Usable.
func (k *Key) NewMAC() hash.Hash { return hmac.New(sha256.New, k.bytes[:]) }

// Zero wipes the key's bytes, in every copy of k. A zeroed key is not
// Usable. Zero on a nil Key does nothing. It must not race with NewMAC.
func (k *Key) Zero() {
	if k == nil || k.bytes == nil {
		return
	}
	clear(k.bytes[:])
	k.bytes = nil
}

// Fingerprint is 6 hex characters of the SHA-256 of the token the key was
// derived from; it is safe to log.
func (k *Key) Fingerprint() string {
	if k == nil {
		return ""
	}
	return k.fingerprint
}

// Redacted is how a key of the named kind prints: its fingerprint only,
// and whether it is zeroed; a key never derived (nil) is unset. The key
// types built on Key print with it.
func (k *Key) Redacted(kind string) string {
	switch {
	case k == nil || k.fingerprint == "":
		return kind + "(unset)"
	case !k.Usable():
		return kind + "(" + k.fingerprint + ", zeroed)"
	default:
		return kind + "(" + k.fingerprint + ")"
	}
}

// String is Redacted("secret.Key").
func (k *Key) String() string {
	if k == nil {
		return "secret.Key(nil)"
	}
	return k.Redacted("secret.Key")
}

// GoString is String: the Go-syntax form must not show the key either.
func (k *Key) GoString() string { return k.String() }

// Format prints String whatever the verb and flags. Its value receiver
// covers Key values as well as pointers, and structs that embed a Key.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue makes slog show String.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText makes encoding/json and other encoders show String.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }
