package untrusted

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestQuoteEscapesAndCuts(t *testing.T) {
	assert.Equal(t, `"abc"`, Quote("abc"))
	assert.Equal(t, `"\u0430dmin"`, Quote("аdmin"), "a Cyrillic look-alike shows as an escape")
	long := strings.Repeat("x", 40)
	assert.Equal(t, `"`+strings.Repeat("x", 32)+`"...`, Quote(long), "only the first 32 bytes are quoted")
	assert.Equal(t, `"\x00"`, Quote("\x00"))
}

func TestCheckPlain(t *testing.T) {
	assert.NoError(t, CheckPlain("invalid input: shard ID "+Quote("é\x00"+strings.Repeat("y", 100))))
	assert.ErrorContains(t, CheckPlain("tab\there"), "byte 3 is 0x9")
	assert.ErrorContains(t, CheckPlain("é"), "byte 0 is 0xc3")
	assert.ErrorContains(t, CheckPlain(strings.Repeat("x", maxMessageLen+1)), "over 400")
	assert.NoError(t, CheckPlain(strings.Repeat("x", maxMessageLen)))
}
