package sealer

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
)

// MaxShardIDLen is the longest shard ID accepted, in bytes.
const MaxShardIDLen = 256

// MaxModelRefLen is the longest model reference accepted, in bytes.
const MaxModelRefLen = 1024

// shardIDRule says what a shard ID may be; error messages end with it.
var shardIDRule = fmt.Sprintf("a shard ID is 1 to %d bytes of ASCII letters, digits, '-', '_' and '.', starts with a letter or digit, and has no \"..\"", MaxShardIDLen)

// ValidateShardID checks that id is 1 to MaxShardIDLen bytes of ASCII letters,
// digits, '-', '_' and '.', starts with a letter or digit, and contains no
// "..". The length is checked before any byte is read. The error wraps
// messages.ErrInvalidInput and quotes at most a short escaped prefix of id.
func ValidateShardID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: shard ID is empty: %s", messages.ErrInvalidInput, shardIDRule)
	case len(id) > MaxShardIDLen:
		return fmt.Errorf("%w: shard ID %s is %d bytes, over the limit: %s",
			messages.ErrInvalidInput, untrusted.Quote(id), len(id), shardIDRule)
	case !isASCIIAlnum(id[0]):
		return fmt.Errorf("%w: shard ID %s starts with %s: %s",
			messages.ErrInvalidInput, untrusted.Quote(id), describeAt(id, 0), shardIDRule)
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !isASCIIAlnum(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("%w: shard ID %s has %s at byte %d: %s",
				messages.ErrInvalidInput, untrusted.Quote(id), describeAt(id, i), i, shardIDRule)
		}
		if c == '.' && id[i-1] == '.' {
			return fmt.Errorf("%w: shard ID %s has \"..\" at byte %d: %s",
				messages.ErrInvalidInput, untrusted.Quote(id), i-1, shardIDRule)
		}
	}
	return nil
}

func isASCIIAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// describeAt names the character at byte i of s, escaped and with its code
// point, so look-alikes such as a Cyrillic 'а' or a zero-width space show for
// what they are.
func describeAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte 0x%02x (not UTF-8)", s[i])
	}
	return fmt.Sprintf("%+q (%U)", r, r)
}

// ValidateSize checks that a shard of size bytes is allowed: size must be
// positive and, when max > 0, at most max. The error wraps
// messages.ErrInvalidInput.
func ValidateSize(size, max int64) error {
	if size <= 0 {
		return fmt.Errorf("%w: shard size %d bytes: want at least 1 byte", messages.ErrInvalidInput, size)
	}
	if max > 0 && size > max {
		return fmt.Errorf("%w: shard size %d bytes (%s) is over the limit of %d bytes (%s)",
			messages.ErrInvalidInput, size, units.Bytes(size), max, units.Bytes(max))
	}
	return nil
}

// ValidateDevice checks that device indexes one of count devices, from 0 to
// count-1. The error wraps messages.ErrInvalidInput.
func ValidateDevice(device, count int) error {
	if count <= 0 {
		return fmt.Errorf("%w: device %d: no devices are configured", messages.ErrInvalidInput, device)
	}
	if device < 0 || device >= count {
		return fmt.Errorf("%w: device %d: want 0 to %d (%d devices)", messages.ErrInvalidInput, device, count-1, count)
	}
	return nil
}

// ValidatePlacement checks a shard's place in its model: index and total are
// not negative, and index < total when total is known (positive); a total of
// 0 means the model's shard count is not given. The error wraps
// messages.ErrInvalidInput.
func ValidatePlacement(index, total int) error {
	if index < 0 || total < 0 || (total > 0 && index >= total) {
		return fmt.Errorf("%w: shard %d of %d: want 0 <= shard index < total shards, or total shards 0 when not given",
			messages.ErrInvalidInput, index, total)
	}
	return nil
}

// ValidateModelRef checks a model reference: empty, or at most MaxModelRefLen
// bytes of UTF-8 text without control characters. The error wraps
// messages.ErrInvalidInput.
func ValidateModelRef(ref string) error {
	if len(ref) > MaxModelRefLen {
		return fmt.Errorf("%w: model ref %s is %d bytes: want at most %d",
			messages.ErrInvalidInput, untrusted.Quote(ref), len(ref), MaxModelRefLen)
	}
	for i, r := range ref {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return fmt.Errorf("%w: model ref %s has %s at byte %d: want UTF-8 text without control characters",
				messages.ErrInvalidInput, untrusted.Quote(ref), describeAt(ref, i), i)
		}
	}
	return nil
}

// ValidateHexSum checks that v is a 32-byte SHA-256 or HMAC-SHA256 sum in
// hex: 64 lowercase hex digits. what names the field in the error.
func ValidateHexSum(what, v string) error {
	if len(v) != 2*sha256.Size || strings.IndexFunc(v, notLowerHex) >= 0 {
		return fmt.Errorf("%w: %s %s: want 64 lowercase hex digits", messages.ErrInvalidInput, what, untrusted.Quote(v))
	}
	return nil
}

// IsLowerHex reports whether v is made only of lowercase hex digits.
func IsLowerHex(v string) bool { return strings.IndexFunc(v, notLowerHex) < 0 }

func notLowerHex(r rune) bool { return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') }

// validateRecord checks every field of a shard record that Sign covers, so
// that only well-formed records are signed, checked or decoded.
func validateRecord(s *Shard) error {
	if err := ValidateShardID(s.ID); err != nil {
		return err
	}
	if s.Device < 0 {
		return fmt.Errorf("%w: shard %s: device %d is negative", messages.ErrInvalidInput, untrusted.Quote(s.ID), s.Device)
	}
	checks := []error{
		ValidateSize(s.Size, 0),
		ValidateHexSum("digest", s.Digest),
		ValidateChunkSize(s.ChunkSize),
		ValidateHexSum("chunk root", s.ChunkRoot),
		ValidateModelRef(s.ModelRef),
		ValidatePlacement(s.ShardIndex, s.TotalShards),
		ValidateTensors(s.Tensors, s.Size),
	}
	for _, err := range checks {
		if err != nil {
			return fmt.Errorf("shard %s: %w", untrusted.Quote(s.ID), err)
		}
	}
	return nil
}
