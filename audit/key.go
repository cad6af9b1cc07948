package audit

import (
	"crypto/sha256"
	"fmt"

	"github.com/vramseal/vramseal/internal/secret"
	"github.com/vramseal/vramseal/messages"
)

// auditPurpose is the purpose of audit keys: its label separates the audit
// key from every other key derived from a worker token, such as the shard
// seal key.
type auditPurpose struct{}

// Label is the HKDF label of audit keys.
func (auditPurpose) Label() string { return "vramseal/v1/audit-log" }

// Kind is how an audit key prints.
func (auditPurpose) Kind() string { return "audit.Key" }

// genesisLabel is what the first record of a log chains from, with the
// worker ID appended.
const genesisLabel = "vramseal/v1/audit-genesis"

// Key is the secret that chains one worker's audit log: a secret.Key of its
// own purpose, derived for one worker (WorkerID). Zero wipes it; printed
// with any verb, as a value, a pointer or a field, or logged, it shows only
// a fingerprint of the token.
type Key = secret.Key[auditPurpose]

// DeriveKey derives the audit key for workerID from the worker token with
// HKDF-SHA256 under its own label, so it differs from the worker's seal key
// and from every other worker's audit key.
func DeriveKey(token []byte, workerID string) (*Key, error) {
	return secret.Derive[auditPurpose](token, workerID)
}

// usableKey reports an error unless k can chain records.
func usableKey(k *Key) error {
	if !k.Usable() {
		return fmt.Errorf("%w: audit key is missing or zeroed", messages.ErrConfig)
	}
	return nil
}

// genesis is the value the first record of k's log chains from.
func genesis(k *Key) [sha256.Size]byte {
	m := k.NewMAC()
	m.Write([]byte(genesisLabel + "\x00" + k.WorkerID()))
	var g [sha256.Size]byte
	m.Sum(g[:0])
	return g
}
