package sealer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

func TestValidateShardID(t *testing.T) {
	tests := []struct {
		name     string
		id       string
		ok       bool
		mentions string // a part of the message that says what is wrong
	}{
		{"letters", "llama", true, ""},
		{"all allowed characters", "Model-7b_v2.shard.00", true, ""},
		{"starts with a digit", "0abc", true, ""},
		{"one character", "a", true, ""},
		{"256 bytes", strings.Repeat("a", 256), true, ""},
		{"single dots apart", "a.b.c", true, ""},
		{"ends with a dot", "a.", true, ""},
		{"empty", "", false, "empty"},
		{"257 bytes", strings.Repeat("a", 257), false, "257 bytes"},
		{"1 GiB-like length", strings.Repeat("a", 300), false, "300 bytes"},
		{"dot", ".", false, "starts with '.'"},
		{"leading dash", "-x", false, "starts with '-'"},
		{"leading underscore", "_x", false, "starts with '_'"},
		{"path traversal", "../etc/passwd", false, "starts with '.'"},
		{"double dot inside", "a..b", false, `".." at byte 1`},
		{"slash", "a/b", false, "'/' (U+002F) at byte 1"},
		{"NUL", "a\x00b", false, `'\x00' (U+0000) at byte 1`},
		{"space", "a b", false, "' ' (U+0020) at byte 1"},
		{"zero-width space", "ab\u200bc", false, `'\u200b' (U+200B) at byte 2`},
		{"Cyrillic a", "\u0430bc", false, `'\u0430' (U+0430)`},
		{"fullwidth A", "x\uff21", false, `'\uff21' (U+FF21) at byte 1`},
		{"invalid UTF-8", "a\xffb", false, "byte 0xff (not UTF-8) at byte 1"},
		{"newline", "a\n", false, `'\n' (U+000A)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateShardID(tt.id)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, messages.ErrInvalidInput)
			msg := err.Error()
			assert.Contains(t, msg, tt.mentions)
			assert.Contains(t, msg, "letters, digits, '-', '_' and '.'", "the message says what is allowed")
			assert.Less(t, len(msg), 400, "the message quotes only a short prefix")
		})
	}
}

func TestValidateShardIDQuotesShortEscapedPrefix(t *testing.T) {
	id := "../" + strings.Repeat("x", 1000)
	err := ValidateShardID(id)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"../`+strings.Repeat("x", 29)+`"...`)
	assert.NotContains(t, err.Error(), strings.Repeat("x", 30))

	err = ValidateShardID("\u0430\u200b")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"\u0430\u200b"`, "look-alikes are escaped")
}

func TestValidateSize(t *testing.T) {
	tests := []struct {
		name      string
		size, max int64
		mentions  string
	}{
		{"one byte", 1, 0, ""},
		{"at the limit", 1 << 30, 1 << 30, ""},
		{"no limit", 1 << 50, 0, ""},
		{"negative limit means none", 1 << 50, -1, ""},
		{"zero", 0, 0, "want at least 1 byte"},
		{"negative", -5, 1 << 20, "-5 bytes"},
		{"over the limit", 1<<30 + 1, 1 << 30, "1073741825 bytes (1.0 GiB) is over the limit of 1073741824 bytes (1.0 GiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSize(tt.size, tt.max)
			if tt.mentions == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, messages.ErrInvalidInput)
			assert.ErrorContains(t, err, tt.mentions)
		})
	}
}

func TestValidateDevice(t *testing.T) {
	tests := []struct {
		name          string
		device, count int
		mentions      string
	}{
		{"first", 0, 1, ""},
		{"last", 3, 4, ""},
		{"past the last", 4, 4, "want 0 to 3 (4 devices)"},
		{"negative", -1, 4, "device -1"},
		{"no devices", 0, 0, "no devices are configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateDevice(tt.device, tt.count)
			if tt.mentions == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, messages.ErrInvalidInput)
			assert.ErrorContains(t, err, tt.mentions)
		})
	}
}

func TestValidatePlacement(t *testing.T) {
	tests := []struct {
		index, total int
		ok           bool
	}{
		{0, 0, true}, {0, 1, true}, {3, 4, true}, {5, 0, true},
		{4, 4, false}, {-1, 4, false}, {-1, 0, false}, {0, -1, false}, {-1, -1, false},
	}
	for _, tt := range tests {
		err := ValidatePlacement(tt.index, tt.total)
		if tt.ok {
			assert.NoError(t, err, "%d of %d", tt.index, tt.total)
		} else {
			assert.ErrorIs(t, err, messages.ErrInvalidInput, "%d of %d", tt.index, tt.total)
		}
	}
}

func TestValidateModelRef(t *testing.T) {
	tests := []struct {
		name string
		ref  string
		ok   bool
	}{
		{"empty", "", true},
		{"typical", "meta-llama/Llama-3.1-70B@sha256:abc", true},
		{"unicode text", "modèle-été", true},
		{"at the limit", strings.Repeat("m", MaxModelRefLen), true},
		{"over the limit", strings.Repeat("m", MaxModelRefLen+1), false},
		{"newline", "a\nb", false},
		{"NUL", "a\x00", false},
		{"escape sequence", "\x1b[31mred", false},
		{"invalid UTF-8", "a\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateModelRef(tt.ref)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, messages.ErrInvalidInput)
			assert.Less(t, len(err.Error()), 300)
		})
	}
}
