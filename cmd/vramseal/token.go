package main

import (
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/safefile"
	"github.com/vramseal/vramseal/sealer"
)

// Where the worker token comes from, after --token-file.
const (
	// tokenFileEnv names a token file, for when flags are awkward to set.
	tokenFileEnv = "VRAMSEAL_TOKEN_FILE"
	// credentialName is the token's name in systemd's $CREDENTIALS_DIRECTORY
	// (LoadCredential=vramseal-token:/etc/vramseal/token).
	credentialName = "vramseal-token"
	// maxTokenFileBytes bounds a token file; a token is a short secret.
	maxTokenFileBytes = 4096
	// ephemeralTokenBytes is the size of a random token made for a run on
	// simulated devices without one (see simToken).
	ephemeralTokenBytes = 32
)

// tokenHowTo says how to make a good token file, for error messages.
const tokenHowTo = "make one with: (umask 077; head -c 32 /dev/urandom > vramseal.token)"

// tokenPath finds the token file: flagPath if set, else $VRAMSEAL_TOKEN_FILE,
// else systemd's credential if it exists. It returns "" when none is named.
func tokenPath(flagPath string) string {
	if flagPath != "" {
		return flagPath
	}
	if p := os.Getenv(tokenFileEnv); p != "" {
		return p
	}
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, credentialName)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// readToken reads the worker token from path. The file must be a regular file
// that neither group nor others may access, and hold at least
// sealer.MinTokenLen bytes once one trailing newline is cut. Every error is a
// usage error that says how to fix it. The caller zeroes the returned bytes.
func readToken(path string) ([]byte, error) {
	f, _, err := safefile.Open(path, safefile.Options{Private: true})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageErrorf("token file %s does not exist; pass --token-file PATH or %s", path, tokenHowTo)
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, usageErrorf("token file %s is not a regular file; pass the file that holds the token", path)
	case errors.Is(err, safefile.ErrNotOwned):
		return nil, usageErrorf("token file %s belongs to another user; the worker's user (or root) must own it", path)
	case errors.Is(err, safefile.ErrNotPrivate):
		return nil, usageErrorf("token file %s may be read by group or others (%s); restrict it: chmod 600 %s", path, safefile.Cause(err), path)
	case err != nil:
		return nil, usageErrorf("token file %s cannot be read (%v); make it readable by this user only: chmod 600 %s", path, safefile.Cause(err), path)
	}
	defer f.Close()
	buf := make([]byte, maxTokenFileBytes+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		clear(buf)
		return nil, usageErrorf("token file %s cannot be read (%v); make it readable by this user only: chmod 600 %s", path, safefile.Cause(err), path)
	}
	if n > maxTokenFileBytes {
		clear(buf)
		return nil, usageErrorf("token file %s is longer than %d bytes; a token is a short secret: %s", path, maxTokenFileBytes, tokenHowTo)
	}
	token := trimNewline(buf[:n])
	if len(token) < sealer.MinTokenLen {
		clear(buf)
		return nil, usageErrorf("token in %s is %d bytes, too short: a token needs at least %d; %s", path, len(token), sealer.MinTokenLen, tokenHowTo)
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

// ephemeralToken returns a new random token.
func ephemeralToken() []byte {
	token := make([]byte, ephemeralTokenBytes)
	rand.Read(token)
	return token
}

// workerKeys are the keys derived from the worker token: one signs shard
// records, one chains the audit log.
type workerKeys struct {
	seal  *sealer.Key
	audit *audit.Key
}

// deriveKeys derives both keys for workerID and then zeroes token.
func deriveKeys(token []byte, workerID string) (*workerKeys, error) {
	defer clear(token)
	sealKey, err := sealer.DeriveKey(token, workerID)
	if err != nil {
		return nil, withExitCode(exitUsage, err)
	}
	auditKey, err := audit.DeriveKey(token, workerID)
	if err != nil {
		sealKey.Zero()
		return nil, withExitCode(exitUsage, err)
	}
	return &workerKeys{seal: sealKey, audit: auditKey}, nil
}

// zero wipes both keys.
func (k *workerKeys) zero() {
	k.seal.Zero()
	k.audit.Zero()
}

// fingerprint is the token's 6-hex fingerprint, safe to log.
func (k *workerKeys) fingerprint() string { return k.seal.Fingerprint() }
