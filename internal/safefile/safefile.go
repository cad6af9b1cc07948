// Package safefile opens the files vramseal is given by name (the worker
// token, model files, the audit log) so that a hostile or broken host
// cannot hang it or swap the file underneath: the open never blocks (a
// FIFO or device opens at once and is then refused), every check runs on
// the opened descriptor, and the caller reads that descriptor only.
//
// It sits below audit, model and cmd/vramseal, which open files by name.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// The ways a file is refused. Errors wrap one of these and name the path.
var (
	// ErrNotRegular means the path names a FIFO, socket, device or
	// directory: something that could block a read, or is not a file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotPrivate means group or others may access the file.
	ErrNotPrivate = errors.New("open to group or others")
	// ErrNotOwned means a user other than this one, or root, owns the file.
	ErrNotOwned = errors.New("owned by another user")
	// ErrChanged means the path named another file when it was opened than
	// when it was checked: it was swapped underneath.
	ErrChanged = errors.New("changed while it was being opened")
)

// Options say how to open a file and what to demand of it.
type Options struct {
	// Flag is os.OpenFile's flag; 0 means os.O_RDONLY.
	Flag int
	// Perm is the mode a file created with os.O_CREATE gets.
	Perm os.FileMode
	// Private refuses a file that group or others may access
	// (ErrNotPrivate), or that a user other than this one or root owns
	// (ErrNotOwned). Group bits that are the mask of a POSIX ACL granting
	// only this user access, as systemd's LoadCredential= sets, are
	// accepted.
	Private bool
}

// betweenCheckAndOpen runs between the check by name and the open, for
// tests to swap the file there.
var betweenCheckAndOpen = func() {}

// Open opens the regular file at path as opts says. The path is checked by
// name first, for clear errors (missing, a directory), then opened with
// O_NONBLOCK, and the opened descriptor is checked again: a regular file,
// the same file the check saw (unless the open created it), and private
// when opts asks. It returns the file and what its descriptor reports.
// Errors are *fs.PathError, wrapping fs.ErrNotExist, ErrNotRegular,
// ErrNotPrivate, ErrNotOwned, ErrChanged or the system's error.
func Open(path string, opts Options) (*os.File, os.FileInfo, error) {
	if opts.Flag == 0 {
		opts.Flag = os.O_RDONLY
	}
	before, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && opts.Flag&os.O_CREATE != 0:
		before = nil
	case err != nil:
		return nil, nil, err
	case !before.Mode().IsRegular():
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	betweenCheckAndOpen()
	f, err := os.OpenFile(path, opts.Flag|syscall.O_NONBLOCK, opts.Perm)
	if errors.Is(err, syscall.ENXIO) { // a FIFO opened for writing with no reader
		err = &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	if err != nil {
		return nil, nil, err
	}
	info, err := check(f, before, opts)
	if err != nil {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return f, info, nil
}

// check checks the opened file f against what the check by name saw.
func check(f *os.File, before os.FileInfo, opts Options) (os.FileInfo, error) {
	info, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case !info.Mode().IsRegular():
		return nil, ErrNotRegular
	case before != nil && !os.SameFile(before, info):
		return nil, ErrChanged
	case opts.Private && info.Mode().Perm()&0o077 != 0 && !aclGrantsOnlyUs(f, info.Mode().Perm()):
		return nil, modeError(info.Mode().Perm())
	case opts.Private && !ownedByUs(info):
		return nil, ErrNotOwned
	}
	return info, nil
}

// modeError is ErrNotPrivate that reads as the mode, e.g. "mode 0640".
type modeError os.FileMode

func (e modeError) Error() string        { return fmt.Sprintf("mode %04o", os.FileMode(e)) }
func (e modeError) Is(target error) bool { return target == ErrNotPrivate }

// ownedByUs reports whether this process's user, or root, owns the file.
func ownedByUs(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return true // no owner to check on this system
	}
	return st.Uid == 0 || int(st.Uid) == os.Geteuid()
}

// ErrTooLarge means a file read whole is larger than its reader allows.
var ErrTooLarge = errors.New("larger than allowed")

// ReadFile reads the whole regular file at path, opened as Open does, if
// it holds at most max bytes; a larger one is refused with ErrTooLarge
// rather than read into memory.
func ReadFile(path string, max int64) ([]byte, error) {
	f, info, err := Open(path, Options{})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info.Size() > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, info.Size(), max)}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max { // it grew since the Fstat
		err = &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)}
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}
