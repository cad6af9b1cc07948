package sealer

import (
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// MaxShardIDLen is the longest shard ID accepted, in bytes.
const MaxShardIDLen = 256

// ValidateShardID checks that id is 1 to 256 bytes of ASCII letters, digits,
// '-', '_' and '.', starts with a letter or digit, and contains no "..".
func ValidateShardID(id string) error {
	if len(id) == 0 || len(id) > MaxShardIDLen {
		return fmt.Errorf("%w: shard ID is %d bytes, want 1 to %d", messages.ErrInvalidInput, len(id), MaxShardIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && (c == '-' || c == '_' || c == '.'))
		if !ok || (c == '.' && i > 0 && id[i-1] == '.') {
			return fmt.Errorf("%w: shard ID has a bad character at byte %d", messages.ErrInvalidInput, i)
		}
	}
	return nil
}

// ValidateSize checks that 0 < size <= max (max <= 0 means no upper bound).
func ValidateSize(size, max int64) error {
	if size <= 0 || (max > 0 && size > max) {
		return fmt.Errorf("%w: size %d bytes", messages.ErrInvalidInput, size)
	}
	return nil
}

// ValidateDevice checks that 0 <= device < count.
func ValidateDevice(device, count int) error {
	if device < 0 || device >= count {
		return fmt.Errorf("%w: device %d, want 0 to %d", messages.ErrInvalidInput, device, count-1)
	}
	return nil
}
