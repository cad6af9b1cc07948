package messages

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCatchPanicTurnsAPanicIntoASoftwareFault(t *testing.T) {
	ran := false
	assert.NoError(t, CatchPanic("work", func() { ran = true }))
	assert.True(t, ran)
	err := CatchPanic("re-hash worker", func() { panic("boom") })
	assert.ErrorIs(t, err, ErrSoftwareFault)
	assert.True(t, IsFatal(err), "a software fault fail-stops")
	assert.Equal(t, "re-hash worker panicked: boom: software fault", err.Error())
}
