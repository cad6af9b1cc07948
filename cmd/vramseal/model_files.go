package main

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vramseal/vramseal/safefile"
	"github.com/vramseal/vramseal/sealer"
)

// modelSource is one shard to seal: its ID, its place in its model, and the
// reader its bytes stream from.
type modelSource struct {
	id string
	// name is what messages call the source: a file path, or "demo shard 1 of 3".
	name         string
	size         int64
	modelRef     string
	index, total int
	data         io.Reader
	// file is the open model file, or nil for generated data.
	file *os.File
	// relName is the file as digest lists and signed manifests name it:
	// its path inside the model directory, or its base name.
	relName string
	// tensors is the checked tensor table of a .safetensors file; nil for
	// other formats, which seal as opaque bytes.
	tensors []sealer.Tensor
	// check, if set, must accept the bytes before the seal is acknowledged.
	check *sealer.Matcher
}

// closeSources closes every model file among srcs.
func closeSources(srcs []*modelSource) {
	for _, s := range srcs {
		if s.file != nil {
			s.file.Close()
		}
	}
}

// openModelFiles checks and opens each model file: each becomes one shard,
// named after its file (or idOverride, with exactly one file). When modelRef is
// set the files are the model's shards, in order. Every problem is a usage
// error that names the file and the fix; on error nothing stays open.
func openModelFiles(paths []string, idOverride, modelRef string) ([]*modelSource, error) {
	if idOverride != "" && len(paths) != 1 {
		return nil, usageErrorf("--id names one shard, but %d model files were given; pass exactly one file with --id, or drop --id to name shards after their files", len(paths))
	}
	if err := sealer.ValidateModelRef(modelRef); err != nil {
		return nil, usageErrorf("--model-ref: %w", err)
	}
	var srcs []*modelSource
	byID := map[string]string{}
	for i, path := range paths {
		src, err := openModelFile(path, idOverride)
		if err == nil {
			if other, dup := byID[src.id]; dup {
				src.file.Close()
				err = usageErrorf("model files %s and %s both make shard ID %q; rename one, or seal them in separate runs", other, path, src.id)
			}
		}
		if err != nil {
			closeSources(srcs)
			return nil, err
		}
		byID[src.id] = path
		if modelRef != "" {
			src.modelRef, src.index, src.total = modelRef, i, len(paths)
		}
		srcs = append(srcs, src)
	}
	return srcs, nil
}

// openModelFile checks and opens one model file. It is opened without
// blocking and checked on its descriptor (safefile), so a FIFO, or a file
// swapped between the check and the open, is refused at once; the shard's
// bytes are read from that descriptor only.
func openModelFile(path, idOverride string) (*modelSource, error) {
	id := idOverride
	if id == "" {
		id = shardIDFromFileName(filepath.Base(path))
		if id == "" {
			return nil, usageErrorf("model file %s has no letters or digits in its name to make a shard ID from; pass --id ID", path)
		}
	}
	if err := sealer.ValidateShardID(id); err != nil {
		return nil, usageErrorf("--id: %w", err)
	}
	f, info, err := safefile.Open(path, safefile.Options{})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageErrorf("model file %s does not exist; check the path, or pass no files to seal the demo model", path)
	case errors.Is(err, safefile.ErrNotRegular):
		if dir, statErr := os.Stat(path); statErr == nil && dir.IsDir() {
			return nil, usageErrorf("model file %s is a directory; pass the files in it, e.g. %s", path, filepath.Join(path, "*.safetensors"))
		}
		return nil, usageErrorf("model file %s is not a regular file (a pipe or device could block or change under us); copy the weights into a file first", path)
	case errors.Is(err, safefile.ErrChanged):
		return nil, usageErrorf("model file %s was replaced while it was being opened; seal it once nothing replaces it", path)
	case err != nil:
		return nil, usageErrorf("model file %s cannot be read (%v); make it and its directory readable by this user, e.g. chmod u+r %s", path, safefile.Cause(err), path)
	case info.Size() == 0:
		f.Close()
		return nil, usageErrorf("model file %s is empty; pass a file that holds the shard's weights", path)
	}
	tensors, header, err := readTensorTable(f, path, info.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	var data io.Reader = f
	if header != nil {
		data = &headerGuard{r: f, want: header, path: path}
	}
	return &modelSource{id: id, name: path, size: info.Size(), data: data, file: f, relName: filepath.Base(path), tensors: tensors}, nil
}

// shardIDFromFileName makes a shard ID from a file name: bytes outside
// [A-Za-z0-9._-] become '_', ".." becomes ".", leading bytes that are not a
// letter or digit are dropped, and the result is cut to sealer.MaxShardIDLen
// bytes. It returns "" when nothing usable is left.
func shardIDFromFileName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !isIDByte(c) {
			b[i] = '_'
		}
	}
	id := string(b)
	for strings.Contains(id, "..") {
		id = strings.ReplaceAll(id, "..", ".")
	}
	id = strings.TrimLeftFunc(id, func(r rune) bool { return !isAlnum(byte(r)) })
	if len(id) > sealer.MaxShardIDLen {
		id = id[:sealer.MaxShardIDLen]
	}
	return id
}

// isIDByte reports whether c may appear in a shard ID.
func isIDByte(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
