package model

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vramseal/vramseal/internal/safefile"
	"github.com/vramseal/vramseal/messages"
)

// Dir is a model directory: its weights are the *.safetensors in it.
type Dir struct {
	// Path is the directory.
	Path string
	// Files are its *.safetensors, sorted, relative to Path.
	Files []string
}

// FindDir reports whether args name one directory, and if so lists its
// *.safetensors files (except those skip says the model leaves out); it
// returns nil, nil when they do not.
func FindDir(args []string, skip func(rel string) bool) (*Dir, error) {
	if len(args) != 1 {
		return nil, nil
	}
	info, err := os.Stat(args[0])
	if err != nil || !info.IsDir() {
		return nil, nil // OpenFile explains what is wrong with a file
	}
	// The directory is read, not globbed: its name is a path, never a
	// pattern ("llama [4bit]", "m[12]").
	entries, err := os.ReadDir(args[0])
	if err != nil {
		return nil, fmt.Errorf("%w: model directory %s cannot be read (%v)", messages.ErrInvalidInput, args[0], safefile.Cause(err))
	}
	d := &Dir{Path: args[0]}
	for _, e := range entries {
		rel := e.Name()
		if !strings.HasSuffix(rel, ".safetensors") || e.IsDir() || (skip != nil && skip(rel)) {
			continue
		}
		d.Files = append(d.Files, rel)
	}
	slices.Sort(d.Files)
	if len(d.Files) == 0 {
		return nil, fmt.Errorf("%w: model directory %s holds no *.safetensors files; pass the directory that holds the weights, or the files themselves",
			messages.ErrInvalidInput, args[0])
	}
	return d, nil
}

// ModelRef is the model reference for the directory: ref if set, else the
// directory's name.
func (d *Dir) ModelRef(ref string) string {
	if ref != "" {
		return ref
	}
	abs, err := filepath.Abs(d.Path)
	if err != nil {
		return filepath.Base(d.Path)
	}
	return filepath.Base(abs)
}

// Paths are the directory's files, joined to its path.
func (d *Dir) Paths() []string {
	out := make([]string, len(d.Files))
	for i, f := range d.Files {
		out[i] = filepath.Join(d.Path, f)
	}
	return out
}

// CheckIndex checks the directory's model.safetensors.index.json, if it has
// one, against the tensor tables of srcs: its weight map must name exactly
// the tensors the files hold, each in the file that holds it, and only files
// that are there. Every mismatch is messages.ErrInvalidInput.
func (d *Dir) CheckIndex(srcs []*Source) error {
	path := filepath.Join(d.Path, SafetensorsIndexName)
	f, _, err := safefile.Open(path, safefile.Options{})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %s cannot be read (%v)", messages.ErrInvalidInput, path, safefile.Cause(err))
	}
	defer f.Close()
	weightMap, err := readWeightMap(io.LimitReader(f, MaxSafetensorsHeader))
	if err != nil {
		return fmt.Errorf("%w: %s is not a safetensors index as transformers reads it (%v); fix or remove it", messages.ErrInvalidInput, path, err)
	}
	if len(weightMap) == 0 {
		return fmt.Errorf("%w: %s has no weight_map; fix or remove it", messages.ErrInvalidInput, path)
	}
	holder := map[string]string{} // tensor -> file that holds it
	byFile := map[string]*Source{}
	var problems []string
	for _, src := range srcs {
		byFile[src.RelName] = src
		for _, t := range src.Tensors {
			if other, twice := holder[t.Name]; twice {
				problems = append(problems, fmt.Sprintf("tensor %+q is in both %+q and %+q", t.Name, other, src.RelName))
			}
			holder[t.Name] = src.RelName
		}
	}
	names := make([]string, 0, len(weightMap))
	for n := range weightMap {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, tensor := range names {
		file := weightMap[tensor]
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
		for _, t := range src.Tensors {
			if _, ok := weightMap[t.Name]; !ok {
				problems = append(problems, fmt.Sprintf("tensor %+q of %+q is not in the weight map", t.Name, src.RelName))
			}
		}
	}
	if len(problems) > 0 {
		more := ""
		if len(problems) > 5 {
			more = fmt.Sprintf(" (and %d more)", len(problems)-5)
			problems = problems[:5]
		}
		return fmt.Errorf("%w: %s does not match the model files: %s%s",
			messages.ErrInvalidInput, path, strings.Join(problems, "; "), more)
	}
	return nil
}

// listedInDir returns the files that source lists, that are not in sealed,
// and that d holds: those to check on the host. A name that is not a local
// path (absolute, or climbing out with "..") is never looked for.
func (d *Dir) listedInDir(source Expectations, sealed []string) []string {
	var out []string
	for _, n := range source.Names() {
		if slices.Contains(sealed, n) || !filepath.IsLocal(filepath.FromSlash(n)) {
			continue
		}
		if _, err := os.Lstat(filepath.Join(d.Path, filepath.FromSlash(n))); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		out = append(out, n)
	}
	return out
}
