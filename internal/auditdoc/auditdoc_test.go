package auditdoc

import (
	"bufio"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLoadReadsTheDocumentsCatalogue(t *testing.T) {
	c, err := Load()
	require.NoError(t, err)
	stopped := c.Events["WorkerStopped"]
	assert.ElementsMatch(t, []string{"info", "critical"}, stopped.Severities)
	assert.Equal(t, map[string]string{"graceful": "boolean", "cause": "string"}, stopped.Fields)
	assert.Equal(t, "array of strings", c.Events["SealVerificationFailed"].Fields["tensors"])
	assert.Equal(t, []string{"VramAllocated"}, c.Reserved)
	assert.GreaterOrEqual(t, len(c.Events), 11)
}

func TestCheckNamesWhatTheCatalogueLacks(t *testing.T) {
	c, err := Load()
	require.NoError(t, err)
	assert.NoError(t, c.Check("VramDeallocated", "info", map[string]any{"shard_id": "s", "device": 1, "size": int64(2), "source": "release"}))
	assert.NoError(t, c.Check("VramDeallocated", "info", map[string]any{"device": 1.0}), "JSON numbers that are whole")
	assert.NoError(t, c.Check("SealVerificationFailed", "critical", map[string]any{"tensors": []any{"a", "b"}}))
	for name, bad := range map[string]func() error{
		"unknown event":     func() error { return c.Check("VramMelted", "info", nil) },
		"unknown severity":  func() error { return c.Check("VramSealed", "critical", nil) },
		"unknown field":     func() error { return c.Check("VramSealed", "info", map[string]any{"address": "0x7f"}) },
		"integer as string": func() error { return c.Check("VramSealed", "info", map[string]any{"size": "12"}) },
		"fraction":          func() error { return c.Check("VramSealed", "info", map[string]any{"size": 1.5}) },
		"array of non-text": func() error {
			return c.Check("SealVerificationFailed", "critical", map[string]any{"tensors": []any{1}})
		},
		"boolean as integer": func() error { return c.Check("WorkerStopped", "info", map[string]any{"graceful": 1}) },
	} {
		assert.Error(t, bad(), name)
	}
}

func TestParseRefusesACatalogueItCannotRead(t *testing.T) {
	for name, doc := range map[string]string{
		"none":        "# a document\n\n## 1. The file\n",
		"no severity": "## 6. Event catalogue\n\n### VramSealed\n\n| `size` | integer | bytes |\n",
		"bad type":    "## 6. Event catalogue\n\n### VramSealed\n\nSeverity: `info`.\n\n| `size` | number | bytes |\n",
	} {
		_, err := parse(bufio.NewScanner(strings.NewReader(doc)))
		assert.Error(t, err, name)
	}
}
