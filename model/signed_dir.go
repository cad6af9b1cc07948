package model

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vramseal/vramseal/messages"
)

// upstreamGitPaths are the paths of a model directory the upstream verifier
// (model_signing verify, with its default --ignore_git_paths) leaves out.
var upstreamGitPaths = []string{".git", ".gitattributes", ".github", ".gitignore"}

// unsignedFiles walks the directory as the upstream verifier hashes it and
// returns, sorted and slash-separated, every file in it (at any depth) that
// the signature m neither lists nor ignores, less the signature file
// sigPath and the git paths. A symbolic link is refused, with
// messages.ErrModelRejected, unless the manifest allows them.
func (d *Dir) unsignedFiles(m *SignedManifest, sigPath string) ([]string, error) {
	sigAbs, _ := filepath.Abs(sigPath)
	var out []string
	err := filepath.WalkDir(d.Path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: model directory %s cannot be read (%v)", messages.ErrInvalidInput, d.Path, err)
		}
		rel, relErr := filepath.Rel(d.Path, p)
		if relErr != nil || rel == "." {
			return relErr
		}
		rel = filepath.ToSlash(rel)
		if m.Ignored(rel) || slices.Contains(upstreamGitPaths, rel) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if abs, _ := filepath.Abs(p); abs == sigAbs {
			return nil
		}
		if e.Type()&fs.ModeSymlink != 0 && !m.AllowSymlinks {
			return &RefusedError{Files: []string{rel}, Source: "signature " + sigPath, Problem: fmt.Sprintf(
				"model file %+q is a symbolic link, and the signature does not allow them (allow_symlinks is false); replace it with the file, or ignore it when signing", rel)}
		}
		if e.IsDir() {
			return nil
		}
		if _, listed := m.Lookup(rel); !listed {
			out = append(out, rel)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// unsignedError is the refusal of files a signature does not cover, in the
// words of the upstream verifier.
func unsignedError(what string, files []string) error {
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = fmt.Sprintf("%+q", f)
	}
	return &RefusedError{Files: files, Source: what, Problem: fmt.Sprintf(
		"extra files found in model: %s; %s neither lists nor ignores them; remove them, or pass --allow-unsigned-files to run with them unchecked", strings.Join(quoted, ", "), what)}
}
