package supervisor

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

func TestIDRegistryClaimsEachIDOnce(t *testing.T) {
	r := newIDRegistry()
	require.NoError(t, r.claim("a"))
	assert.ErrorIs(t, r.claim("a"), messages.ErrDuplicateShard)
	require.NoError(t, r.claim("b"), "another ID")
	r.drop("a")
	assert.NoError(t, r.claim("a"), "dropped, so free again")

	var won atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := range 100 {
				if r.claim(fmt.Sprintf("raced-%d", i)) == nil {
					won.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(100), won.Load(), "each raced ID claimed exactly once")
}
