package model

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/sealer"
)

// referenceDir holds safetensors files and the reference parser's verdict on
// each (huggingface/safetensors, recorded by its run.sh).
const referenceDir = "testdata/safetensors-reference"

// deliberateRefusals are the corpus files the reference accepts and vramseal
// refuses on purpose, with the rule that refuses them: a key given twice
// (the reference keeps one copy silently, so two readers of one file may
// disagree on its tensors) and a tensor with an empty name.
var deliberateRefusals = map[string]sealer.HeaderRule{
	"dup-tensor-name.safetensors":         sealer.RuleDuplicate,
	"dup-tensor-name-differs.safetensors": sealer.RuleDuplicate,
	"dup-metadata-key.safetensors":        sealer.RuleDuplicate,
	"name-empty.safetensors":              sealer.RuleTensorName,
}

// TestSafetensorsAgreesWithReference reads every corpus file and checks that
// vramseal accepts exactly the files the reference accepts, but for
// deliberateRefusals.
func TestSafetensorsAgreesWithReference(t *testing.T) {
	f, err := os.Open(filepath.Join(referenceDir, "verdicts.tsv"))
	require.NoError(t, err)
	defer f.Close()
	verdicts := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		fields := strings.Split(sc.Text(), "\t")
		require.GreaterOrEqual(t, len(fields), 2, "verdict line %q", sc.Text())
		verdicts[fields[0]] = fields[1]
	}
	require.NoError(t, sc.Err())

	files, err := os.ReadDir(filepath.Join(referenceDir, "corpus"))
	require.NoError(t, err)
	require.Len(t, verdicts, len(files), "every corpus file has a verdict: re-run run.sh")
	require.GreaterOrEqual(t, len(files), 60)
	accepted := 0
	for _, e := range files {
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			verdict, ok := verdicts[name]
			require.True(t, ok, "no verdict recorded")
			require.Contains(t, []string{"ok", "error"}, verdict)
			file, err := os.ReadFile(filepath.Join(referenceDir, "corpus", name))
			require.NoError(t, err)
			_, err = ReadSafetensorsHeader(bytes.NewReader(file), int64(len(file)))
			if rule, deliberate := deliberateRefusals[name]; deliberate {
				require.Equal(t, "ok", verdict, "listed as deliberate, but the reference refuses it too")
				var he *sealer.HeaderError
				require.True(t, errors.As(err, &he), "vramseal must refuse it: %v", err)
				assert.Equal(t, rule, he.Rule)
				return
			}
			if verdict == "ok" {
				accepted++
				assert.NoError(t, err, "the reference accepts this file")
			} else {
				assert.Error(t, err, "the reference refuses this file")
			}
		})
	}
	assert.Positive(t, accepted)
}
