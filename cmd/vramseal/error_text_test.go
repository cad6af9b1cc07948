package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

func TestUserMessageDropsClassifyingKindsAndKeepsTheRest(t *testing.T) {
	chunk := sealer.ValidateChunkSize(1000)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"prefix", fmt.Errorf("--chunk-size 1000: %w", chunk), "--chunk-size 1000: " + chunk.Error()[len("invalid input: "):]},
		{"suffix", fmt.Errorf("sim: allocate 0 bytes: size must be positive: %w", messages.ErrInvalidInput), "sim: allocate 0 bytes: size must be positive"},
		{"config", fmt.Errorf("%w: worker ID is empty", messages.ErrConfig), "worker ID is empty"},
		{"telling kind stays", fmt.Errorf("shard %q: %w", "a", messages.ErrSealVerificationFailed), `shard "a": seal verification failed`},
		{"plain", errors.New("disk full"), "disk full"},
		{"kind text without the kind", errors.New("invalid input: from elsewhere"), "invalid input: from elsewhere"},
		{"prefix, kind's words in a path", fmt.Errorf("open %s: %w", "/m/invalid input: x", fmt.Errorf("%w: not a safetensors file", messages.ErrInvalidInput)),
			"open /m/invalid input: x: not a safetensors file"},
		{"suffix, kind's words in a path", fmt.Errorf("model %s: bad header: %w", "/m/invalid input: x", messages.ErrInvalidInput),
			"model /m/invalid input: x: bad header"},
		{"usage error around it", usageErrorf("--chunk-size: %w", fmt.Errorf("%w: must be a power of two", messages.ErrInvalidInput)),
			"--chunk-size: must be a power of two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, userMessage(tt.err))
		})
	}
}
