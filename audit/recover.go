package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, found{}, fmt.Errorf("%w: open audit log: %w", messages.ErrConfig, err)
	}
	got, err := checkExisting(f, key)
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
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: open log directory: %w", err)
	}
	if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return fmt.Errorf("audit: sync log directory: %w", err)
	}
	return nil
}

// checkExisting does the checks of openExisting on the open file f.
func checkExisting(f *os.File, key *Key) (found, error) {
	info, err := f.Stat()
	if err != nil {
		return found{}, fmt.Errorf("audit: stat log %s: %w", f.Name(), err)
	}
	if !info.Mode().IsRegular() {
		return found{}, fmt.Errorf("%w: audit log %s is not a regular file", messages.ErrConfig, f.Name())
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return found{}, fmt.Errorf("%w: audit log %s has mode %04o, open to group or others; fix it with: chmod 600 %s",
			messages.ErrConfig, f.Name(), perm, f.Name())
	}
	if err := lockFile(f); err != nil {
		return found{}, err
	}
	res, err := scan(io.NewSectionReader(f, 0, info.Size()), key)
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
