package main

import (
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/modelsigtest"
	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/sealer"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func eventsOf(lines []auditLine, event string) []auditLine {
	var out []auditLine
	for _, l := range lines {
		if l.Event == event {
			out = append(out, l)
		}
	}
	return out
}

// requireRefusalRecord checks that a model refused before anything was
// sealed left one critical ModelRejected record naming file, and nothing
// else but the log's own records.
func requireRefusalRecord(t *testing.T, lines []auditLine, file string) {
	t.Helper()
	rejected := eventsOf(lines, audit.EventModelRejected)
	require.Len(t, rejected, 1, "the audit log says which file: %v", lines)
	assert.Equal(t, audit.SeverityCritical, rejected[0].Severity)
	assert.Contains(t, rejected[0].Fields["files"], file)
	assert.Equal(t, false, rejected[0].Fields["sealed"])
	assert.Empty(t, eventsOf(lines, audit.EventVramSealed), "nothing sealed")
	assert.Empty(t, eventsOf(lines, audit.EventModelVerified))
}

func TestRunRefusesAFileThatIsNotThePublishedModel(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	modelDir, files := modeltest.WriteDir(t, dir)
	const bad = "model-00002-of-00003.safetensors"
	var sums strings.Builder
	sums.WriteString("# published digests\n")
	for _, name := range []string{"model-00001-of-00003.safetensors", bad, "model-00003-of-00003.safetensors"} {
		sum := sha256Hex(files[name])
		if name == bad {
			sum = sha256Hex([]byte("the published bytes"))
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, name)
	}
	sumsPath := filepath.Join(dir, "sha256sums.txt")
	require.NoError(t, os.WriteFile(sumsPath, []byte(sums.String()), 0o600))

	res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--sha256sums", sumsPath, "--duration", "1s", modelDir)...)
	require.Equal(t, exitModelRejected, res.code, "stderr:\n%s", res.stderr)
	errLine := lastLine(res.stderr)
	assert.Contains(t, errLine, "not the published model")
	assert.Contains(t, errLine, bad)
	assert.Contains(t, errLine, "sha256sums.txt line 3")

	logPath := filepath.Join(dir, "audit.jsonl")
	lines := readAuditLog(t, logPath)
	assert.Zero(t, countEvents(lines, audit.EventVramSealed)[bad], "no VramSealed for the rejected file")
	rejected := eventsOf(lines, audit.EventModelRejected)
	require.Len(t, rejected, 1)
	r := rejected[0]
	assert.Equal(t, audit.SeverityCritical, r.Severity)
	assert.Equal(t, bad, r.Fields["file"])
	assert.Equal(t, bad, r.Fields["shard_id"])
	assert.Equal(t, sha256Hex([]byte("the published bytes")), r.Fields["expected"])
	assert.Equal(t, sha256Hex(files[bad]), r.Fields["actual"])
	assert.Equal(t, sumsPath+" line 3", r.Fields["source"])
	// Whatever else sealed is freed at the stop; the rejected file held
	// nothing by then (supervisor's TestSealChecksPublishedDigest checks the
	// device's accounting directly).
	sealed := countEvents(lines, audit.EventVramSealed)
	freed := countEvents(lines, audit.EventVramDeallocated)
	assert.Equal(t, sealed, freed, "every shard sealed was freed: %v", lines)
	assert.Zero(t, freed[bad])

	verify := runVramseal(t, dir, "audit", "verify", logPath, "--token-file", token)
	assert.Equal(t, exitOK, verify.code, "the log is intact: %s %s", verify.stdout, verify.stderr)
	assert.Contains(t, verify.stdout+verify.stderr, "intact")
}

func TestRunSealsASignedModelDirectory(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	modelDir, files := modeltest.WriteDir(t, dir)
	key := modelsigtest.NewKey(elliptic.P384())
	sig := filepath.Join(dir, "model.sig")
	signed := maps.Clone(files)
	index, err := os.ReadFile(filepath.Join(modelDir, model.SafetensorsIndexName))
	require.NoError(t, err)
	signed[model.SafetensorsIndexName] = index // as model_signing signs the whole directory
	require.NoError(t, os.WriteFile(sig, modelsigtest.Sign(key, modelsigtest.Model{
		Name: "tiny-llm", Method: "shards", ShardSize: 100 << 10, Files: signed, IgnorePaths: []string{"model.sig"},
	}), 0o600))
	pub := filepath.Join(dir, "key.pub")
	require.NoError(t, os.WriteFile(pub, modelsigtest.PublicPEM(key), 0o600))

	res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--signature", sig, "--public-key", pub, "--duration", "500ms", modelDir)...)
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	lines := readAuditLog(t, filepath.Join(dir, "audit.jsonl"))
	verified := eventsOf(lines, audit.EventModelVerified)
	require.Len(t, verified, 1)
	v := verified[0].Fields
	assert.Equal(t, "tiny-llm", v["subject"])
	assert.Equal(t, "shards", v["method"])
	assert.Len(t, v["key_fingerprint"], 64)
	assert.Len(t, v["subject_digest"], 64)
	assert.EqualValues(t, 3, v["files"])
	sealed := eventsOf(lines, audit.EventVramSealed)
	require.Len(t, sealed, 3)
	for _, s := range sealed {
		assert.Equal(t, "tiny-llm", s.Fields["model_ref"])
		assert.EqualValues(t, 3, s.Fields["total_shards"])
	}
	assert.Empty(t, eventsOf(lines, audit.EventModelRejected))

	t.Run("another key", func(t *testing.T) {
		other := filepath.Join(dir, "other.pub")
		require.NoError(t, os.WriteFile(other, modelsigtest.PublicPEM(modelsigtest.NewKey(elliptic.P384())), 0o600))
		res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--signature", sig, "--public-key", other, modelDir)...)
		assert.Equal(t, exitModelRejected, res.code, "stderr:\n%s", res.stderr)
		assert.Contains(t, lastLine(res.stderr), "another key")
	})
	t.Run("a file off by one byte", func(t *testing.T) {
		changed := filepath.Join(modelDir, "model-00003-of-00003.safetensors")
		data := append([]byte(nil), files["model-00003-of-00003.safetensors"]...)
		data[len(data)-1] ^= 1
		require.NoError(t, os.WriteFile(changed, data, 0o600))
		defer os.WriteFile(changed, files["model-00003-of-00003.safetensors"], 0o600)
		res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--signature", sig, "--public-key", pub, modelDir)...)
		assert.Equal(t, exitModelRejected, res.code, "stderr:\n%s", res.stderr)
		assert.Contains(t, lastLine(res.stderr), "model-00003-of-00003.safetensors")
	})
	t.Run("keyless bundle", func(t *testing.T) {
		keyless := filepath.Join(dir, "keyless.sig")
		require.NoError(t, os.WriteFile(keyless, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"MIIB"}},"dsseEnvelope":{}}`), 0o600))
		res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--signature", keyless, "--public-key", pub, modelDir)...)
		assert.Equal(t, exitUsage, res.code, "stderr:\n%s", res.stderr)
		assert.Contains(t, lastLine(res.stderr), "only bundles signed with a private key")
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.stderr), "\n")+1, "one line: %s", res.stderr)
	})
}

func TestRunChecksTheModelIndex(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	modelDir, _ := modeltest.WriteDir(t, dir)
	indexPath := filepath.Join(modelDir, model.SafetensorsIndexName)
	orig, err := os.ReadFile(indexPath)
	require.NoError(t, err)
	for name, edit := range map[string]struct {
		change func(map[string]string)
		want   string
	}{
		"missing file":   {func(m map[string]string) { m["extra.weight"] = "model-00009-of-00009.safetensors" }, `file "model-00009-of-00009.safetensors" (for tensor "extra.weight") is missing`},
		"missing tensor": {func(m map[string]string) { m["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00003.safetensors" }, `tensor "model.layers.9.mlp.up_proj.weight" is missing from "model-00001-of-00003.safetensors"`},
		"tensor in wrong file": {func(m map[string]string) {
			m["model.layers.0.mlp.down_proj.weight"] = "model-00002-of-00003.safetensors"
		}, `tensor "model.layers.0.mlp.down_proj.weight" is in "model-00001-of-00003.safetensors", not "model-00002-of-00003.safetensors"`},
		"tensor not in map": {func(m map[string]string) { delete(m, "model.layers.2.input_layernorm.weight") }, `tensor "model.layers.2.input_layernorm.weight" of "model-00003-of-00003.safetensors" is not in the weight map`},
	} {
		t.Run(name, func(t *testing.T) {
			var index struct {
				WeightMap map[string]string `json:"weight_map"`
			}
			require.NoError(t, json.Unmarshal(orig, &index))
			edit.change(index.WeightMap)
			b, err := json.Marshal(index)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(indexPath, b, 0o600))
			defer os.WriteFile(indexPath, orig, 0o600)
			res := runVramseal(t, dir, append(smallRunFlags(dir, token), modelDir)...)
			assert.Equal(t, exitUsage, res.code, "stderr:\n%s", res.stderr)
			assert.Contains(t, lastLine(res.stderr), edit.want)
		})
	}
	t.Run("tensor in two files", func(t *testing.T) {
		copyPath := filepath.Join(modelDir, "model-00004-of-00003.safetensors")
		b, err := os.ReadFile(filepath.Join(modelDir, "model-00001-of-00003.safetensors"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(copyPath, b, 0o600))
		defer os.Remove(copyPath)
		res := runVramseal(t, dir, append(smallRunFlags(dir, token), modelDir)...)
		assert.Equal(t, exitUsage, res.code, "stderr:\n%s", res.stderr)
		assert.Contains(t, lastLine(res.stderr), `tensor "model.layers.0.self_attn.q_proj.weight" is in both "model-00001-of-00003.safetensors" and "model-00004-of-00003.safetensors"`)
	})
	_, statErr := os.Stat(filepath.Join(dir, "audit.jsonl"))
	assert.True(t, os.IsNotExist(statErr), "nothing was sealed or logged")
}

func TestRunRefusesABadSafetensorsHeader(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	header := `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`
	file := filepath.Join(dir, "model.safetensors")
	b := append(fmt.Appendf(nil, "%c%c%c%c%c%c%c%c", len(header), 0, 0, 0, 0, 0, 0, 0), header...)
	require.NoError(t, os.WriteFile(file, append(b, make([]byte, 16)...), 0o600))
	res := runVramseal(t, dir, append(smallRunFlags(dir, token), file)...)
	assert.Equal(t, exitUsage, res.code, "stderr:\n%s", res.stderr)
	assert.Contains(t, lastLine(res.stderr), `tensor "w": rule "duplicate key" broken`)
}

func TestRunNamesTheTensorsAFlippedBitLandsIn(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	modelDir, files := modeltest.WriteDir(t, dir)
	const name = "model-00001-of-00003.safetensors"
	table, err := model.ReadSafetensorsHeader(strings.NewReader(string(files[name])), int64(len(files[name])))
	require.NoError(t, err)

	res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--sim-fault", "bitflip@300ms", filepath.Join(modelDir, name))...)
	require.Equal(t, exitFailStop, res.code, "stderr:\n%s", res.stderr)
	lines := readAuditLog(t, filepath.Join(dir, "audit.jsonl"))
	failed := eventsOf(lines, audit.EventSealVerificationFailed)
	require.Len(t, failed, 1)
	f := failed[0].Fields
	offset, length := int64(f["offset"].(float64)), int64(f["length"].(float64))
	var want []any
	for _, x := range table.Overlapping(offset, offset+length) {
		want = append(want, x.Name)
	}
	require.NotEmpty(t, want, "every chunk of the file holds some tensor")
	assert.Equal(t, want, f["tensors"], "the record names exactly the tensors the bad chunk overlaps")
	errLine := lastLine(res.stderr)
	for _, x := range table.Tensors {
		if slices.Contains(want, any(x.Name)) {
			assert.Contains(t, errLine, `"`+x.Name+`"`)
		} else {
			assert.NotContains(t, errLine, `"`+x.Name+`"`)
		}
	}
}

func TestRunMatchesADirectoryAgainstItsSignedFiles(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	modelDir, files := modeltest.WriteDir(t, dir)
	key := modelsigtest.NewKey(elliptic.P256())
	pub := filepath.Join(dir, "key.pub")
	require.NoError(t, os.WriteFile(pub, modelsigtest.PublicPEM(key), 0o600))
	// Without an index, so that only the signature decides which files
	// belong; the index's own checks are TestRunChecksTheModelIndex's.
	require.NoError(t, os.Remove(filepath.Join(modelDir, model.SafetensorsIndexName)))
	table, err := model.LayoutSafetensors(nil, []sealer.Tensor{{Name: "extra.weight", DType: "U8", Shape: []uint64{1000}}})
	require.NoError(t, err)
	header, err := table.Header()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(modelDir, "extra.safetensors"), append(header, make([]byte, 1000)...), 0o600))
	sign := func(t *testing.T, signed map[string][]byte, ignore ...string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "model.sig")
		require.NoError(t, os.WriteFile(path, modelsigtest.Sign(key, modelsigtest.Model{
			Name: "tiny-llm", Method: "files", Files: signed, IgnorePaths: ignore,
		}), 0o600))
		return path
	}
	run := func(t *testing.T, sig string, flags ...string) (result, []auditLine) {
		t.Helper()
		logDir := t.TempDir()
		args := append(smallRunFlags(logDir, token), "--signature", sig, "--public-key", pub, "--duration", "200ms")
		res := runVramseal(t, dir, append(append(args, flags...), modelDir)...)
		lines := []auditLine(nil)
		if _, err := os.Stat(filepath.Join(logDir, "audit.jsonl")); err == nil {
			lines = readAuditLog(t, filepath.Join(logDir, "audit.jsonl"))
		}
		return res, lines
	}
	withConfig := map[string][]byte{"config.json": []byte(`{"x":1}`)}
	for n, b := range files {
		withConfig[n] = b
	}

	t.Run("an ignored file is left out", func(t *testing.T) {
		res, lines := run(t, sign(t, files, "extra.safetensors"))
		require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
		assert.Len(t, eventsOf(lines, audit.EventVramSealed), 3)
		assert.Zero(t, countEvents(lines, audit.EventVramSealed)["extra.safetensors"])
		assert.Len(t, eventsOf(lines, audit.EventModelVerified), 1)
	})
	t.Run("an extra file not ignored is refused", func(t *testing.T) {
		res, lines := run(t, sign(t, files))
		require.Equal(t, exitModelRejected, res.code, "stderr:\n%s", res.stderr)
		assert.Contains(t, lastLine(res.stderr), `lists no digest for "extra.safetensors"`)
		assert.Contains(t, lastLine(res.stderr), "--allow-unlisted")
		requireRefusalRecord(t, lines, "extra.safetensors")
	})
	t.Run("an extra file allowed unlisted", func(t *testing.T) {
		res, lines := run(t, sign(t, files), "--allow-unlisted")
		require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
		assert.Len(t, eventsOf(lines, audit.EventVramSealed), 4)
		assert.EqualValues(t, 3, eventsOf(lines, audit.EventModelVerified)[0].Fields["files"])
	})
	t.Run("a signed file missing", func(t *testing.T) {
		res, lines := run(t, sign(t, withConfig, "extra.safetensors"))
		require.Equal(t, exitModelRejected, res.code, "stderr:\n%s", res.stderr)
		assert.Contains(t, lastLine(res.stderr), `lists "config.json", which is not being sealed`)
		assert.Contains(t, lastLine(res.stderr), "--allow-partial")
		requireRefusalRecord(t, lines, "config.json")
	})
	t.Run("a signed file left out on purpose", func(t *testing.T) {
		res, lines := run(t, sign(t, withConfig, "extra.safetensors"), "--allow-partial")
		require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
		assert.Len(t, eventsOf(lines, audit.EventVramSealed), 3)
	})

	// As upstream model_signing signs a directory: config.json too.
	configPath := filepath.Join(modelDir, "config.json")
	t.Run("a signed file in the directory that is not sealed is checked on the host", func(t *testing.T) {
		require.NoError(t, os.WriteFile(configPath, withConfig["config.json"], 0o600))
		t.Cleanup(func() { os.Remove(configPath) })
		res, lines := run(t, sign(t, withConfig, "extra.safetensors"))
		require.Equal(t, exitOK, res.code, "no --allow-partial needed: stderr:\n%s", res.stderr)
		assert.Contains(t, res.stderr, "signed, checked on host, not sealed")
		assert.Contains(t, res.stderr, "config.json")
		assert.Len(t, eventsOf(lines, audit.EventVramSealed), 3)
		assert.Zero(t, countEvents(lines, audit.EventVramSealed)["config.json"], "checked, not sealed")
	})
	t.Run("a signed file in the directory that differs is refused", func(t *testing.T) {
		require.NoError(t, os.WriteFile(configPath, []byte(`{"x":2}`), 0o600))
		t.Cleanup(func() { os.Remove(configPath) })
		for _, flags := range [][]string{nil, {"--allow-partial"}} {
			res, lines := run(t, sign(t, withConfig, "extra.safetensors"), flags...)
			require.Equal(t, exitModelRejected, res.code, "%v: stderr:\n%s", flags, res.stderr)
			assert.Contains(t, lastLine(res.stderr), `"config.json"`)
			assert.Contains(t, lastLine(res.stderr), "not the published model")
			requireRefusalRecord(t, lines, "config.json")
		}
	})
	t.Run("a listed file in the directory that differs is refused", func(t *testing.T) {
		require.NoError(t, os.WriteFile(configPath, []byte(`{"x":2}`), 0o600))
		t.Cleanup(func() { os.Remove(configPath) })
		sums := filepath.Join(t.TempDir(), "sha256sums.txt")
		require.NoError(t, os.WriteFile(sums, []byte(sha256Hex(withConfig["config.json"])+"  config.json\n"), 0o600))
		res, lines := run(t, sign(t, files, "extra.safetensors", "config.json"), "--sha256sums", sums, "--allow-unlisted")
		require.Equal(t, exitModelRejected, res.code, "stderr:\n%s", res.stderr)
		assert.Contains(t, lastLine(res.stderr), `"config.json"`)
		assert.Contains(t, lastLine(res.stderr), "sha256sums.txt line 1")
		requireRefusalRecord(t, lines, "config.json")

		require.NoError(t, os.WriteFile(configPath, withConfig["config.json"], 0o600))
		res, _ = run(t, sign(t, files, "extra.safetensors", "config.json"), "--sha256sums", sums, "--allow-unlisted")
		require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
		assert.Contains(t, res.stderr, "listed, checked on host, not sealed")
	})
}

func TestRunListsTensorsInShards(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	modelDir, files := modeltest.WriteDir(t, dir)
	const name = "model-00003-of-00003.safetensors"
	table, err := model.ReadSafetensorsHeader(strings.NewReader(string(files[name])), int64(len(files[name])))
	require.NoError(t, err)
	p := startVramseal(t, dir, append(smallRunFlags(dir, token), filepath.Join(modelDir, name))...)
	base := "http://" + p.waitForLog(t, "serving")["addr"].(string)
	p.waitForLog(t, "every shard sealed and verified")
	code, body := httpGet(t, base+"/shards")
	require.Equal(t, 200, code)
	var shards []struct {
		ID      string          `json:"id"`
		Tensors []sealer.Tensor `json:"tensors"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &shards))
	require.Len(t, shards, 1)
	assert.Equal(t, table.Tensors, shards[0].Tensors)
	p.signal(t, os.Interrupt)
	assert.Equal(t, exitOK, p.wait(t))
}

func TestRunRefusesUnlistedFilesBeforeOpeningThem(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	sums := filepath.Join(dir, "sha256sums.txt")
	require.NoError(t, os.WriteFile(sums, []byte(sha256Hex([]byte("x"))+"  other.safetensors\n"), 0o600))
	// A FIFO would block an open; a missing file would fail it: neither is
	// reached, since no list names them.
	fifo := filepath.Join(dir, "a.safetensors")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--sha256sums", sums, fifo, filepath.Join(dir, "missing.safetensors"))...)
	require.Equal(t, exitModelRejected, res.code, "stderr:\n%s", res.stderr)
	assert.Contains(t, lastLine(res.stderr), "lists no digest for")
	assert.Contains(t, lastLine(res.stderr), "a.safetensors")
}

func TestRunVerifiesASignedHubLayoutModelAndNamesAnyFileChanged(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	modelDir, files := modeltest.WriteHFDir(t, dir)
	key := modelsigtest.NewKey(elliptic.P256())
	sig := filepath.Join(dir, "model.sig")
	require.NoError(t, os.WriteFile(sig, modelsigtest.Sign(key, modelsigtest.Model{Name: "tiny-llm", Method: "files", Files: files}), 0o600))
	pub := filepath.Join(dir, "key.pub")
	require.NoError(t, os.WriteFile(pub, modelsigtest.PublicPEM(key), 0o600))
	run := func(t *testing.T) (result, []auditLine) {
		t.Helper()
		logDir := t.TempDir()
		res := runVramseal(t, dir, append(smallRunFlags(logDir, token), "--signature", sig, "--public-key", pub, "--duration", "200ms", modelDir)...)
		var lines []auditLine
		if _, err := os.Stat(filepath.Join(logDir, "audit.jsonl")); err == nil {
			lines = readAuditLog(t, filepath.Join(logDir, "audit.jsonl"))
		}
		return res, lines
	}
	restore := func(t *testing.T) {
		t.Helper()
		entries, err := os.ReadDir(modelDir)
		require.NoError(t, err)
		for _, e := range entries {
			require.NoError(t, os.RemoveAll(filepath.Join(modelDir, e.Name())))
		}
		for name, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(modelDir, name), b, 0o600))
		}
	}

	res, lines := run(t)
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	verified := eventsOf(lines, audit.EventModelVerified)
	require.Len(t, verified, 1)
	assert.EqualValues(t, 3, verified[0].Fields["files"], "three shards sealed and matched")
	assert.NotContains(t, verified[0].Fields, "uncovered", "the signature covers every file")
	for _, name := range []string{"config.json", "tokenizer.json", model.SafetensorsIndexName} {
		assert.Contains(t, res.stderr, name, "checked on the host")
	}

	names := slices.Sorted(maps.Keys(files))
	refused := func(t *testing.T, mentions ...string) []auditLine {
		t.Helper()
		res, lines := run(t)
		require.Equal(t, exitModelRejected, res.code, "stderr:\n%s", res.stderr)
		line := lastLine(res.stderr)
		assert.True(t, slices.ContainsFunc(mentions, func(m string) bool { return strings.Contains(line, m) }), "names one of %q: %s", mentions, line)
		return lines
	}
	for _, name := range names {
		t.Run("altered "+name, func(t *testing.T) {
			defer restore(t)
			b := slices.Clone(files[name])
			b[len(b)-2] ^= 1
			require.NoError(t, os.WriteFile(filepath.Join(modelDir, name), b, 0o600))
			lines := refused(t, name)
			rejected := eventsOf(lines, audit.EventModelRejected)
			require.Len(t, rejected, 1, "the audit log says which file")
			assert.Equal(t, name, rejected[0].Fields["file"])
			assert.Empty(t, eventsOf(lines, audit.EventModelVerified))
		})
		t.Run("removed "+name, func(t *testing.T) {
			defer restore(t)
			require.NoError(t, os.Remove(filepath.Join(modelDir, name)))
			requireRefusalRecord(t, refused(t, name), name)
		})
		t.Run("renamed "+name, func(t *testing.T) {
			defer restore(t)
			renamed := "renamed-" + name
			require.NoError(t, os.Rename(filepath.Join(modelDir, name), filepath.Join(modelDir, renamed)))
			lines := refused(t, name, renamed)
			rejected := eventsOf(lines, audit.EventModelRejected)
			require.Len(t, rejected, 1, "the audit log says which file")
			assert.Contains(t, []any{name, renamed}, rejected[0].Fields["file"])
			assert.Empty(t, eventsOf(lines, audit.EventModelVerified))
		})
	}
	for _, added := range []string{"modeling_evil.py", "sub/tokenizer.json", "extra.safetensors", ".hidden"} {
		t.Run("added "+added, func(t *testing.T) {
			defer restore(t)
			path := filepath.Join(modelDir, filepath.FromSlash(added))
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
			require.NoError(t, os.WriteFile(path, files["model-00001-of-00003.safetensors"], 0o600))
			requireRefusalRecord(t, refused(t, added), added)
		})
	}
}
