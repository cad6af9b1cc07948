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

// Purpose is what a key is for. Each key type of the module is a Key of its
// own Purpose (sealer.Key, audit.Key), so that a key for one purpose cannot
// be passed where another's is wanted, while the zeroing and redaction
// rules are written once, here.
type Purpose interface {
	// Label is the HKDF label the key is derived under, versioned, such as
	// "vramseal/v1/audit-log".
	Label() string
	// Kind is the name the key prints with, such as "audit.Key".
	Kind() string
}

// Key is a key derived for purpose P. Its bytes live in one buffer that
// Zero wipes; copies of a Key share the buffer, so Zero on any copy disarms
// them all. Whatever the fmt verb, as a value, a pointer or a field, and
// through slog or encoding/json, a Key shows only its kind and the
// fingerprint of the token it was derived from.
type Key[P Purpose] struct {
	bytes       *[Len]byte
	fingerprint string
	workerID    string
}

// Derive derives the key for purpose P and workerID from token with
// HKDF-SHA256: the info is P's label, a NUL, and workerID, so keys of two
// purposes or two workers never coincide. token must be at least
// MinTokenLen bytes and workerID non-empty, else the error wraps
// messages.ErrConfig. The token is not kept; the caller zeroes it.
func Derive[P Purpose](token []byte, workerID string) (*Key[P], error) {
	var p P
	purpose := p.Label()
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
	return &Key[P]{bytes: b, fingerprint: hex.EncodeToString(sum[:3]), workerID: workerID}, nil
}

// Usable reports whether k can key a MAC: it exists, was derived, and is
// not zeroed. The zero test runs in constant time.
func (k *Key[P]) Usable() bool {
	var zero [Len]byte
	return k != nil && k.bytes != nil && subtle.ConstantTimeCompare(k.bytes[:], zero[:]) == 0
}

// NewMAC returns an HMAC-SHA256 keyed with k. k must be Usable.
func (k *Key[P]) NewMAC() hash.Hash { return hmac.New(sha256.New, k.bytes[:]) }

// Zero wipes the key's bytes, in every copy of k. A zeroed key is not
// Usable. Zero on a nil Key does nothing. It must not race with NewMAC.
func (k *Key[P]) Zero() {
	if k == nil || k.bytes == nil {
		return
	}
	clear(k.bytes[:])
	k.bytes = nil
}

// Fingerprint is 6 hex characters of the SHA-256 of the token the key was
// derived from; it is safe to log.
func (k *Key[P]) Fingerprint() string {
	if k == nil {
		return ""
	}
	return k.fingerprint
}

// WorkerID is the worker the key was derived for.
func (k *Key[P]) WorkerID() string {
	if k == nil {
		return ""
	}
	return k.workerID
}

// String is the key's kind and fingerprint only, and says if it is zeroed,
// unset (never derived) or nil.
func (k *Key[P]) String() string {
	var p P
	switch {
	case k == nil:
		return p.Kind() + "(nil)"
	case k.fingerprint == "":
		return p.Kind() + "(unset)"
	case !k.Usable():
		return p.Kind() + "(" + k.fingerprint + ", zeroed)"
	default:
		return p.Kind() + "(" + k.fingerprint + ")"
	}
}

// GoString is String: the Go-syntax form must not show the key either.
func (k *Key[P]) GoString() string { return k.String() }

// Format prints String whatever the verb and flags. Its value receiver
// covers Key values as well as pointers, and structs that embed a Key.
func (k Key[P]) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue makes slog show String.
func (k Key[P]) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText makes encoding/json and other encoders show String.
func (k Key[P]) MarshalText() ([]byte, error) { return []byte(k.String()), nil }
