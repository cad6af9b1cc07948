package gpuhealth

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReadinessCarriesTheLastWarning(t *testing.T) {
	r := NewReadiness(nil)
	assert.Empty(t, r.Warning())
	r.Warn("scrub too slow")
	assert.Equal(t, "scrub too slow", r.Warning())
	r.Warn("")
	assert.Empty(t, r.Warning())
}
