package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vramseal/vramseal/internal/safefile"
	"github.com/vramseal/vramseal/messages"
)

// found is what Open learned from the file already on disk.
type found struct {
	scanResult
	cut int64 // bytes of torn tail cut off
}

// openExisting opens (or creates) the log file for appending, locks it,
// checks that only its owner may access it, and checks the records already
// in it, cutting a torn last line. A last record whose mac verifies but
// which lacks its newline is kept and ended: it may have been acknowledged.
func openExisting(path string, key *Key) (*os.File, found, error) {
	f, info, err := safefile.Open(path, safefile.Options{Flag: os.O_RDWR | os.O_APPEND | os.O_CREATE, Perm: 0o600, Private: true})
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, found{}, fmt.Errorf("%w: audit log %s is not a regular file", messages.ErrConfig, path)
	case errors.Is(err, safefile.ErrNotPrivate):
		mode := err
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			mode = pe.Err // "mode 0640", without the path said below
		}
		return nil, found{}, fmt.Errorf("%w: audit log %s has %v, open to group or others; fix it with: chmod 600 %s",
			messages.ErrConfig, path, mode, path)
	case err != nil:
		return nil, found{}, fmt.Errorf("%w: open audit log: %w", messages.ErrConfig, err)
	}
	got, err := checkExisting(f, info, key)
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return nil, found{}, errors.Join(err, f.Close())
	}
	return f, got, nil
}

// syncDir makes the directory entry of a newly created log durable.
func syncDir(dir string) error {
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0) // a directory or nothing: never a FIFO that blocks
	if err != nil {
		return fmt.Errorf("audit: open log directory: %w", err)
	}
	if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return fmt.Errorf("audit: sync log directory: %w", err)
	}
	return nil
}

// checkExisting does the checks of openExisting on the open file f, whose
// descriptor reported info.
func checkExisting(f *os.File, info os.FileInfo, key *Key) (found, error) {
	if err := lockFile(f); err != nil {
		return found{}, err
	}
	res, err := scan(io.NewSectionReader(f, 0, info.Size()), key, nil)
	if err != nil {
		return found{}, fmt.Errorf("audit: read log %s: %w", f.Name(), err)
	}
	got := found{scanResult: res}
	switch {
	case res.Intact() && res.unterminated:
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return found{}, fmt.Errorf("audit: end the last record of log %s: %w", f.Name(), err)
		}
		if err := f.Sync(); err != nil {
			return found{}, fmt.Errorf("audit: end the last record of log %s: %w", f.Name(), err)
		}
	case res.Intact():
	case res.Reason == ReasonTruncated:
		got.cut = info.Size() - res.goodBytes
		if err := f.Truncate(res.goodBytes); err != nil {
			return found{}, fmt.Errorf("audit: cut torn tail of log %s: %w", f.Name(), err)
		}
		if err := f.Sync(); err != nil {
			return found{}, fmt.Errorf("audit: cut torn tail of log %s: %w", f.Name(), err)
		}
	default:
		return found{}, fmt.Errorf("%w: audit log %s, line %d: %s: %s",
			messages.ErrIntegrityViolation, f.Name(), res.FirstBad, res.Reason, res.Detail)
	}
	return got, nil
}
