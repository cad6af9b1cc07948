package model

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vramseal/vramseal/internal/safefile"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// File is a model file to open, and the ID of the shard it becomes.
type File struct {
	Path string
	ID   string
}

// FileError is a model file that cannot be sealed as it is: missing, not a
// regular file, unreadable, empty, or changed while it was being sealed. It
// matches messages.ErrInvalidInput, and its cause (fs.ErrNotExist,
// safefile.ErrNotRegular, ...) when it has one, with errors.Is.
type FileError struct {
	Path string
	// Problem says what is wrong and how to fix it; it follows "model file
	// PATH " in the message.
	Problem string
	// Err is the cause, or nil.
	Err error
}

// Error is "invalid input: model file PATH PROBLEM".
func (e *FileError) Error() string {
	return messages.ErrInvalidInput.Error() + ": model file " + e.Path + " " + e.Problem
}

// Unwrap returns messages.ErrInvalidInput and the cause.
func (e *FileError) Unwrap() []error {
	if e.Err == nil {
		return []error{messages.ErrInvalidInput}
	}
	return []error{messages.ErrInvalidInput, e.Err}
}

// OpenFiles checks and opens each model file (see OpenFile). When modelRef
// is set the files are the model's shards, in order. Two files that make
// the same shard ID are refused. On error nothing stays open.
func OpenFiles(files []File, modelRef string) ([]*Source, error) {
	if err := sealer.ValidateModelRef(modelRef); err != nil {
		return nil, err
	}
	var srcs []*Source
	byID := map[string]string{}
	for i, file := range files {
		src, err := OpenFile(file.Path, file.ID)
		if err == nil {
			if other, dup := byID[src.ID]; dup {
				src.file.Close()
				err = fmt.Errorf("%w: model files %s and %s both make shard ID %q; rename one, or seal them in separate runs",
					messages.ErrInvalidInput, other, file.Path, src.ID)
			}
		}
		if err != nil {
			Close(srcs)
			return nil, err
		}
		byID[src.ID] = file.Path
		if modelRef != "" {
			src.ModelRef, src.Index, src.Total = modelRef, i, len(files)
		}
		srcs = append(srcs, src)
	}
	return srcs, nil
}

// OpenFile checks and opens one model file as shard id. It is opened
// without blocking and checked on its descriptor (safefile), so a FIFO, or a
// file swapped between the check and the open, is refused at once; the
// shard's bytes are read from that descriptor only. A .safetensors file's
// header is checked now, and again as it streams (see headerGuard).
func OpenFile(path, id string) (*Source, error) {
	if err := sealer.ValidateShardID(id); err != nil {
		return nil, err
	}
	f, info, err := safefile.Open(path, safefile.Options{})
	problem := ""
	switch {
	case errors.Is(err, fs.ErrNotExist):
		problem = "does not exist; check the path"
	case errors.Is(err, safefile.ErrNotRegular):
		problem = "is not a regular file (a pipe or device could block or change under us); copy the weights into a file first"
		if dir, statErr := os.Stat(path); statErr == nil && dir.IsDir() {
			problem = "is a directory; pass the files in it, e.g. " + filepath.Join(path, "*.safetensors")
		}
	case errors.Is(err, safefile.ErrChanged):
		problem = "was replaced while it was being opened; seal it once nothing replaces it"
	case err != nil:
		problem = fmt.Sprintf("cannot be read (%v); make it and its directory readable by this user, e.g. chmod u+r %s", safefile.Cause(err), path)
	case info.Size() == 0:
		f.Close()
		return nil, &FileError{Path: path, Problem: "is empty; pass a file that holds the shard's weights"}
	}
	if err != nil {
		return nil, &FileError{Path: path, Problem: problem, Err: err}
	}
	tensors, guard, err := readTensorTable(f, path, info.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	var data io.Reader = f
	if guard != nil {
		data = guard
	}
	return &Source{ID: id, Name: path, Size: info.Size(), data: data, file: f, RelName: filepath.Base(path), Tensors: tensors}, nil
}

// readTensorTable reads and checks the header of a .safetensors file, then
// rewinds it, and returns the table and the guard that streams the file
// and checks its header is still the one read (its 8-byte length and JSON,
// by digest). Files in other formats have neither, and seal as opaque
// bytes.
func readTensorTable(f *os.File, path string, size int64) ([]sealer.Tensor, *headerGuard, error) {
	if !strings.HasSuffix(path, ".safetensors") {
		return nil, nil, nil
	}
	// The digest is of the very bytes parsed: the parser reads the length
	// and the header, nothing more.
	h := sha256.New()
	table, err := ReadSafetensorsHeader(io.TeeReader(f, h), size)
	var want [sha256.Size]byte
	if err == nil {
		h.Sum(want[:0])
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("model file %s: %w", path, err)
	}
	return table.Tensors, newHeaderGuard(f, want, table.DataStart(), path), nil
}

// ShardIDFromFileName makes a shard ID from a file name: bytes outside
// [A-Za-z0-9._-] become '_', ".." becomes ".", leading bytes that are not a
// letter or digit are dropped, and the result is cut to sealer.MaxShardIDLen
// bytes. It returns "" when nothing usable is left.
func ShardIDFromFileName(name string) string {
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
