package secret

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/vramseal/vramseal/internal/safefile"
	"github.com/vramseal/vramseal/messages"
)

// MaxTokenFileBytes bounds a token file; a token is a short secret.
const MaxTokenFileBytes = 4096

// TokenHowTo says how to make a good token file, for error messages.
const TokenHowTo = "make one with: (umask 077; head -c 32 /dev/urandom > vramseal.token)"

// ReadTokenFile reads the worker token from path. The file must be a
// regular file that neither group nor others may access, owned by this user
// or root, and hold at least MinTokenLen bytes once one trailing newline
// ("\n" or "\r\n") is cut. Every error wraps messages.ErrConfig, names the
// file and says how to fix it; a missing file also wraps fs.ErrNotExist. No
// error shows a byte of the token. The caller zeroes the returned bytes.
func ReadTokenFile(path string) ([]byte, error) {
	f, _, err := safefile.Open(path, safefile.Options{Private: true})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, tokenErrorf(err, "token file %s does not exist; %s", path, TokenHowTo)
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, tokenErrorf(err, "token file %s is not a regular file; pass the file that holds the token", path)
	case errors.Is(err, safefile.ErrNotOwned):
		return nil, tokenErrorf(err, "token file %s belongs to another user; the worker's user (or root) must own it", path)
	case errors.Is(err, safefile.ErrNotPrivate):
		return nil, tokenErrorf(err, "token file %s may be read by group or others (%s); restrict it: chmod 600 %s", path, safefile.Cause(err), path)
	case err != nil:
		return nil, tokenErrorf(err, "token file %s cannot be read (%v); make it readable by this user only: chmod 600 %s", path, safefile.Cause(err), path)
	}
	defer f.Close()
	buf := make([]byte, MaxTokenFileBytes+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		clear(buf)
		return nil, tokenErrorf(err, "token file %s cannot be read (%v); make it readable by this user only: chmod 600 %s", path, safefile.Cause(err), path)
	}
	if n > MaxTokenFileBytes {
		clear(buf)
		return nil, tokenErrorf(nil, "token file %s is longer than %d bytes; a token is a short secret: %s", path, MaxTokenFileBytes, TokenHowTo)
	}
	token := trimNewline(buf[:n])
	if len(token) < MinTokenLen {
		clear(buf)
		return nil, tokenErrorf(nil, "token in %s is %d bytes, too short: a token needs at least %d; %s", path, len(token), MinTokenLen, TokenHowTo)
	}
	return token, nil
}

// trimNewline cuts one trailing "\n" or "\r\n", as editors and echo add.
func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// tokenError is a refused token file: its message says what to fix, with
// no prefix, and it matches messages.ErrConfig and its cause.
type tokenError struct {
	msg   string
	cause error
}

func tokenErrorf(cause error, format string, args ...any) error {
	return &tokenError{msg: fmt.Sprintf(format, args...), cause: cause}
}

func (e *tokenError) Error() string { return e.msg }

func (e *tokenError) Unwrap() []error {
	if e.cause == nil {
		return []error{messages.ErrConfig}
	}
	return []error{messages.ErrConfig, e.cause}
}
