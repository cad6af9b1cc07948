package stress

import (
	"fmt"
	"sync"
)

// maxViolationSamples is how many violation descriptions a report keeps.
const maxViolationSamples = 10

// violations collects broken invariants: all are counted, the first few
// described. It is safe for concurrent use.
type violations struct {
	mu      sync.Mutex
	count   int
	samples []string
}

// addf records one violation.
func (v *violations) addf(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.count++
	if len(v.samples) < maxViolationSamples {
		v.samples = append(v.samples, fmt.Sprintf(format, args...))
	}
}

// snapshot returns the count and the descriptions kept.
func (v *violations) snapshot() (int, []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.count, append([]string(nil), v.samples...)
}
