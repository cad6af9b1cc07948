package audit

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/auditdoc"
)

// eventConstants are the values of the package's Event* constants, read
// from its source so that a new one cannot be missed.
func eventConstants(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "record.go", nil, 0)
	require.NoError(t, err)
	var events []string
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if !strings.HasPrefix(name.Name, "Event") || i >= len(spec.Values) {
				continue
			}
			lit, ok := spec.Values[i].(*ast.BasicLit)
			require.True(t, ok, "%s is not a string literal", name.Name)
			v, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			events = append(events, v)
		}
		return true
	})
	require.NotEmpty(t, events)
	return events
}

func TestEveryEventIsInTheDocumentsCatalogueAndNoOther(t *testing.T) {
	c, err := auditdoc.Load()
	require.NoError(t, err)
	events := eventConstants(t)
	for _, e := range events {
		_, written := c.Events[e]
		assert.True(t, written || slices.Contains(c.Reserved, e), "event %s is neither in %s's catalogue nor reserved there", e, auditdoc.Path)
	}
	for e := range c.Events {
		assert.Contains(t, events, e, "%s catalogues %s, which the package does not define", auditdoc.Path, e)
	}
	for _, e := range c.Reserved {
		assert.Contains(t, events, e)
		assert.NotContains(t, c.Events, e, "%s is reserved and catalogued", e)
	}
}

func TestTheLogTruncatedRecordIsAsTheCatalogueSays(t *testing.T) {
	c, err := auditdoc.Load()
	require.NoError(t, err)
	key := testKey(t, "w1")
	lines := buildLines(t, key, 2)
	path := filepath.Join(t.TempDir(), "audit.log")
	require.NoError(t, os.WriteFile(path, append(bytes.Clone(lines[0]), lines[1][:20]...), 0o600))
	l, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)
	require.NoError(t, l.Record(context.Background(), Record{Event: EventWorkerStopped, Severity: SeverityInfo, Fields: map[string]any{"graceful": true}}))
	require.NoError(t, l.Close())
	got := readLog(t, path)
	require.Equal(t, EventLogTruncated, got[1].Event)
	for _, line := range got[1:] {
		assert.NoError(t, c.Check(line.Event, line.Severity, line.Fields))
	}
}
