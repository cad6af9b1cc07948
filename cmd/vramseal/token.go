package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vramseal/vramseal/internal/secret"
	"github.com/vramseal/vramseal/supervisor"
)

// Where the worker token comes from, after --token-file.
const (
	// tokenFileEnv names a token file, for when flags are awkward to set.
	tokenFileEnv = "VRAMSEAL_TOKEN_FILE"
	// credentialName is the token's name in systemd's $CREDENTIALS_DIRECTORY
	// (LoadCredential=vramseal-token:/etc/vramseal/token).
	credentialName = "vramseal-token"
	// ephemeralTokenBytes is how many random bytes a token made for a run on
	// simulated devices without one holds (see simToken).
	ephemeralTokenBytes = 32
)

// tokenHowTo says how to make a good token file, for error messages.
const tokenHowTo = secret.TokenHowTo

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

// readToken reads the worker token from path with the library's checks
// (secret.ReadTokenFile: a private regular file of at least
// sealer.MinTokenLen bytes once one trailing newline is cut). Every error is
// a usage error that says how to fix it. The caller zeroes the returned
// bytes.
func readToken(path string) ([]byte, error) {
	token, err := secret.ReadTokenFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageErrorf("token file %s does not exist; pass --token-file PATH or %s", path, tokenHowTo)
	case err != nil:
		return nil, withExitCode(exitUsage, err)
	}
	return token, nil
}

// ephemeralToken returns a new random token, hex-encoded: a token file keeps
// text as it is, whereas raw bytes ending in a newline would lose it when
// read back (secret.ReadTokenFile cuts one) and derive another key.
func ephemeralToken() []byte {
	var random [ephemeralTokenBytes]byte
	rand.Read(random[:])
	token := hex.AppendEncode(nil, random[:])
	clear(random[:])
	return token
}

// deriveKeys derives both of the worker's keys for workerID and then
// zeroes token; a refusal is a usage error.
func deriveKeys(token []byte, workerID string) (*supervisor.Keys, error) {
	keys, err := supervisor.DeriveKeys(token, workerID)
	if err != nil {
		return nil, withExitCode(exitUsage, err)
	}
	return keys, nil
}
