package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vramseal/vramseal/internal/safefile"
)

// auditLogName is the default audit log's file name.
const auditLogName = "vramseal-audit.jsonl"

// defaultAuditLog is where "vramseal run" keeps its audit log unless told:
// in the first of systemd's $STATE_DIRECTORY when it is set (StateDirectory=),
// so that a service's log does not depend on its working directory, else in
// the working directory.
func defaultAuditLog() string {
	if dirs := os.Getenv("STATE_DIRECTORY"); dirs != "" {
		dir, _, _ := strings.Cut(dirs, ":")
		return filepath.Join(dir, auditLogName)
	}
	return "./" + auditLogName
}

// simTokenPath is where a run on simulated devices that was given no token
// keeps the one it made: beside the audit log, named after it
// (vramseal-audit.jsonl -> vramseal-audit.token).
func simTokenPath(auditLog string) string {
	return strings.TrimSuffix(auditLog, filepath.Ext(auditLog)) + ".token"
}

// simToken returns the token for a run on simulated devices that was given
// none: the one an earlier such run kept beside the audit log, or else a new
// random one, kept there (mode 0600, never overwritten) so that the next run
// continues the same log and "vramseal audit verify" can check it. created
// says whether it was made now. A log that exists without such a token was
// written with another token, and is refused.
func simToken(auditLog string) (token []byte, path string, created bool, err error) {
	path = simTokenPath(auditLog)
	if _, err := os.Lstat(path); err == nil {
		token, err := readToken(path)
		return token, path, false, err
	}
	if info, err := os.Stat(auditLog); err == nil && info.Size() > 0 {
		return nil, path, false, usageErrorf("audit log %s holds records written with a token this run was not given; pass --token-file with the token that wrote it, or a new --audit-log path", auditLog)
	}
	token = ephemeralToken()
	if err := writeNewTokenFile(path, token); err != nil {
		clear(token)
		return nil, path, false, usageErrorf("cannot keep a token for simulated GPUs at %s: %v; pass --token-file PATH, %s", path, err, tokenHowTo)
	}
	return token, path, true, nil
}

// writeNewTokenFile writes token to a new file at path that only this user
// may read. It never replaces or follows an existing file or link.
func writeNewTokenFile(path string, token []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return safefile.Cause(err)
	}
	_, err = f.Write(token)
	err = errors.Join(err, f.Sync(), f.Close())
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write: %w", safefile.Cause(err))
	}
	return nil
}
