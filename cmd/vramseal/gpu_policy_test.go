package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/messages"
)

func TestRunRefusesAnIntegratedGPUAsAFailStop(t *testing.T) {
	dir := t.TempDir()
	file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
	m := newMockMachine(t, 4<<20, 0)
	m.integrated = true

	p := runInProcess(t, m, append(gpuRunFlags(dir, writeToken(t, dir)), file)...)

	assert.Equal(t, exitFailStop, p.code, "a policy violation is fatal, not a plain failure")
	assert.ErrorIs(t, p.err, messages.ErrPolicyViolation)
	assert.Contains(t, p.err.Error(), "device 0")
	assert.Contains(t, p.err.Error(), "integrated GPU whose memory is system RAM")
	assert.Zero(t, m.sims[0].Outstanding())
	lines := readAuditLog(t, filepath.Join(dir, "audit.jsonl"))
	require.NotEmpty(t, lines)
	assert.Equal(t, audit.EventPolicyViolation, lines[0].Event)
	assert.Equal(t, audit.SeverityCritical, lines[0].Severity)
	assert.Equal(t, "vram_only", lines[0].Fields["policy"])
	assert.Empty(t, countEvents(lines, audit.EventVramSealed), "nothing sealed")
}
