package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/safefile"
	"github.com/vramseal/vramseal/sealer"
)

// safetensorsIndexName is the file a sharded safetensors model lists its
// tensors in: which file holds each.
const safetensorsIndexName = "model.safetensors.index.json"

// modelDir is a model directory given to "vramseal run DIR".
type modelDir struct {
	path  string
	files []string // every *.safetensors in it, sorted, relative to path
}

// findModelDir reports whether args name one directory, and if so lists its
// *.safetensors files (except those skip says the model leaves out).
func findModelDir(args []string, skip func(rel string) bool) (*modelDir, error) {
	if len(args) != 1 {
		return nil, nil
	}
	info, err := os.Stat(args[0])
	if err != nil || !info.IsDir() {
		return nil, nil // openModelFile explains what is wrong with a file
	}
	matches, err := filepath.Glob(filepath.Join(args[0], "*.safetensors"))
	if err != nil {
		return nil, usageErrorf("model directory %s: %v", args[0], err)
	}
	d := &modelDir{path: args[0]}
	for _, m := range matches {
		rel := filepath.Base(m)
		if skip != nil && skip(rel) {
			continue
		}
		d.files = append(d.files, rel)
	}
	slices.Sort(d.files)
	if len(d.files) == 0 {
		return nil, usageErrorf("model directory %s holds no *.safetensors files; pass the directory that holds the weights, or the files themselves", args[0])
	}
	return d, nil
}

// modelRef is the model reference for the directory: the flag's, else the
// directory's name.
func (d *modelDir) modelRef(flag string) string {
	if flag != "" {
		return flag
	}
	abs, err := filepath.Abs(d.path)
	if err != nil {
		return filepath.Base(d.path)
	}
	return filepath.Base(abs)
}

// paths are the directory's files, joined to its path.
func (d *modelDir) paths() []string {
	out := make([]string, len(d.files))
	for i, f := range d.files {
		out[i] = filepath.Join(d.path, f)
	}
	return out
}

// checkIndex checks the directory's model.safetensors.index.json, if it has
// one, against the tensor tables of srcs: its weight map must name exactly
// the tensors the files hold, each in the file that holds it, and only
// files that are there. Every mismatch is a usage error (exit 2).
func (d *modelDir) checkIndex(srcs []*modelSource) error {
	path := filepath.Join(d.path, safetensorsIndexName)
	f, _, err := safefile.Open(path, safefile.Options{})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return usageErrorf("%s cannot be read (%v)", path, safefile.Cause(err))
	}
	defer f.Close()
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.NewDecoder(io.LimitReader(f, sealer.MaxSafetensorsHeader)).Decode(&index); err != nil {
		return usageErrorf("%s is not a safetensors index (%v); fix or remove it", path, err)
	}
	if len(index.WeightMap) == 0 {
		return usageErrorf("%s has no weight_map; fix or remove it", path)
	}
	holder := map[string]string{} // tensor -> file that holds it
	byFile := map[string]*modelSource{}
	var problems []string
	for _, src := range srcs {
		byFile[src.relName] = src
		for _, t := range src.tensors {
			if other, twice := holder[t.Name]; twice {
				problems = append(problems, fmt.Sprintf("tensor %+q is in both %+q and %+q", t.Name, other, src.relName))
			}
			holder[t.Name] = src.relName
		}
	}
	names := make([]string, 0, len(index.WeightMap))
	for n := range index.WeightMap {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, tensor := range names {
		file := index.WeightMap[tensor]
		switch got, ok := holder[tensor]; {
		case byFile[file] == nil:
			problems = append(problems, fmt.Sprintf("file %+q (for tensor %+q) is missing", file, tensor))
		case !ok:
			problems = append(problems, fmt.Sprintf("tensor %+q is missing from %+q", tensor, file))
		case got != file:
			problems = append(problems, fmt.Sprintf("tensor %+q is in %+q, not %+q", tensor, got, file))
		}
	}
	for _, src := range srcs {
		for _, t := range src.tensors {
			if _, ok := index.WeightMap[t.Name]; !ok {
				problems = append(problems, fmt.Sprintf("tensor %+q of %+q is not in the weight map", t.Name, src.relName))
			}
		}
	}
	if len(problems) > 0 {
		more := ""
		if len(problems) > 5 {
			more = fmt.Sprintf(" (and %d more)", len(problems)-5)
			problems = problems[:5]
		}
		return withExitCode(exitUsage, fmt.Errorf("%w: %s does not match the model files: %s%s",
			messages.ErrInvalidInput, path, strings.Join(problems, "; "), more))
	}
	return nil
}

// readTensorTable reads and checks the header of a .safetensors file, then
// rewinds it, and returns the table and the header's bytes (the 8-byte
// length and the JSON). Files in other formats have neither, and seal as
// opaque bytes.
func readTensorTable(f *os.File, path string, size int64) ([]sealer.Tensor, []byte, error) {
	if !strings.HasSuffix(path, ".safetensors") {
		return nil, nil, nil
	}
	table, err := sealer.ReadSafetensorsHeader(f, size)
	var header []byte
	if err == nil {
		header = make([]byte, table.DataStart())
		if _, err = f.ReadAt(header, 0); err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
	}
	if err != nil {
		return nil, nil, withExitCode(exitUsage, fmt.Errorf("model file %s: %w", path, err))
	}
	return table.Tensors, header, nil
}

// headerGuard reads a safetensors file for its seal and fails the read if
// the header streamed differs from the one checked when the file was
// opened, so a file rewritten in between cannot seal under a stale table.
type headerGuard struct {
	r    io.Reader
	want []byte // the header not yet compared
	path string
	// changed is the error once the header differed; later reads return it.
	changed error
}

func (g *headerGuard) Read(p []byte) (int, error) {
	if g.changed != nil {
		return 0, g.changed
	}
	n, err := g.r.Read(p)
	if len(g.want) > 0 && n > 0 {
		k := min(n, len(g.want))
		if !bytes.Equal(p[:k], g.want[:k]) {
			g.changed = fmt.Errorf("%w: model file %s changed while it was being sealed: its header is not the one checked; seal it once nothing rewrites it",
				messages.ErrInvalidInput, g.path)
			return 0, g.changed
		}
		g.want = g.want[k:]
	}
	return n, err
}

// changedWhileSealed is the error of a source whose file changed under its
// seal (see headerGuard), or nil. The runtime reports a failed read in its
// own words; this is the cause, a usage error like a file swapped at open.
func (s *modelSource) changedWhileSealed() error {
	if g, ok := s.data.(*headerGuard); ok && g.changed != nil {
		return withExitCode(exitUsage, g.changed)
	}
	return nil
}
