package cuda

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vramseal/vramseal/messages"
)

func TestCheckVRAMPolicy(t *testing.T) {
	h100 := Properties{Name: "NVIDIA H100 80GB HBM3", TotalMemory: 80 << 30, ComputeMajor: 9}
	for _, tc := range []struct {
		name     string
		props    Properties
		violates bool
		mentions string
	}{
		{"discrete GPU", h100, false, ""},
		{"discrete GPU with managed and pageable access", Properties{
			Name: h100.Name, TotalMemory: h100.TotalMemory, ManagedMemory: true, PageableMemoryAccess: true,
		}, false, ""},
		{"integrated GPU", Properties{Name: "Orin", Integrated: true, ManagedMemory: true}, true, `"Orin" is an integrated GPU`},
		{"unnamed integrated GPU", Properties{Integrated: true}, true, "the device is an integrated GPU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckVRAMPolicy(tc.props)
			if !tc.violates {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, messages.ErrPolicyViolation)
			assert.True(t, messages.IsFatal(err), "a policy violation stops the worker")
			assert.Contains(t, err.Error(), tc.mentions)
			assert.Contains(t, err.Error(), "dedicated VRAM")
		})
	}
}
