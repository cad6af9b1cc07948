package sealer

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/vramseal/vramseal/messages"
)

// MinTokenLen is the shortest worker token accepted, in bytes.
const MinTokenLen = 16

// sealKeyInfo is the HKDF info prefix for seal keys: it names the purpose and
// its version, so a key derived here differs from every other key derived from
// the same token. The worker ID follows it, after a NUL.
const sealKeyInfo = "vramseal/v1/shard-record-hmac-sha256"

// keyLen is the size of a seal key, in bytes.
const keyLen = sha256.Size

// Key is the secret that signs shard records. Its bytes live in one buffer
// that Zero wipes. No printed form shows them: a Key or *Key prints as String
// for every fmt verb and flag. Copies of a Key share the buffer, so Zero on any
// copy disarms them all.
type Key struct {
	secret      *[keyLen]byte
	fingerprint string
}

// DeriveKey derives the seal key of workerID from the worker token with
// HKDF-SHA256 under a fixed, versioned label, so that two workers never share
// a key. The token must be at least MinTokenLen bytes and workerID non-empty;
// otherwise the error wraps messages.ErrConfig. The token is not kept.
func DeriveKey(token []byte, workerID string) (*Key, error) {
	if len(token) < MinTokenLen {
		return nil, fmt.Errorf("%w: worker token is %d bytes, need at least %d", messages.ErrConfig, len(token), MinTokenLen)
	}
	if workerID == "" {
		return nil, fmt.Errorf("%w: worker ID is empty: each worker needs its own ID to get its own key", messages.ErrConfig)
	}
	derived, err := hkdf.Key(sha256.New, token, nil, sealKeyInfo+"\x00"+workerID, keyLen)
	if err != nil {
		return nil, fmt.Errorf("%w: derive seal key: %v", messages.ErrConfig, err)
	}
	secret := new([keyLen]byte)
	copy(secret[:], derived)
	clear(derived)
	sum := sha256.Sum256(token)
	return &Key{secret: secret, fingerprint: hex.EncodeToString(sum[:3])}, nil
}

// usable reports whether k can sign: it exists, was derived, and is not
// zeroed. The zero test runs in constant time.
func (k *Key) usable() bool {
	var zero [keyLen]byte
	return k != nil && k.secret != nil && subtle.ConstantTimeCompare(k.secret[:], zero[:]) == 0
}

// Zero wipes the key's bytes. A zeroed key signs and checks nothing. Zero on
// a nil Key does nothing. Call it once nothing signs or checks with the key
// any more: it must not race with Sign or CheckSignature.
func (k *Key) Zero() {
	if k == nil || k.secret == nil {
		return
	}
	clear(k.secret[:])
	k.secret = nil
}

// Fingerprint is 6 hex characters of the SHA-256 of the token the key was
// derived from; it is safe to log.
func (k *Key) Fingerprint() string {
	if k == nil {
		return ""
	}
	return k.fingerprint
}

// String names the key by its fingerprint only, and says if it is zeroed.
func (k *Key) String() string {
	switch {
	case k == nil:
		return "sealer.Key(nil)"
	case k.fingerprint == "":
		return "sealer.Key(unset)"
	case !k.usable():
		return "sealer.Key(" + k.fingerprint + ", zeroed)"
	default:
		return "sealer.Key(" + k.fingerprint + ")"
	}
}

// GoString is String: the Go-syntax form must not show the key either.
func (k *Key) GoString() string { return k.String() }

// Format prints String whatever the verb, so that no verb, not even a wrong
// one such as %s on a Key value, reaches the key's buffer. It takes a value so
// that Key values are covered as well as pointers.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }
