package supervisor

import (
	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/sealer"
)

// Keys are the two keys one worker token gives a worker: Seal signs its
// shard records (Config.Key) and Audit chains its audit log
// (audit.LogConfig.Key). Like the keys themselves, Keys never prints a byte
// of them, only the token's fingerprint.
type Keys struct {
	Seal  *sealer.Key
	Audit *audit.Key
}

// DeriveKeys derives both keys for workerID from token, then zeroes token,
// also when it fails. A token shorter than MinTokenLen or an empty
// workerID is an error wrapping ErrConfig.
func DeriveKeys(token []byte, workerID string) (*Keys, error) {
	defer clear(token)
	sealKey, err := sealer.DeriveKey(token, workerID)
	if err != nil {
		return nil, err
	}
	auditKey, err := audit.DeriveKey(token, workerID)
	if err != nil {
		sealKey.Zero()
		return nil, err
	}
	return &Keys{Seal: sealKey, Audit: auditKey}, nil
}

// Zero wipes both keys. It does nothing on nil.
func (k *Keys) Zero() {
	if k == nil {
		return
	}
	k.Seal.Zero()
	k.Audit.Zero()
}

// Fingerprint is the token's 6-hex fingerprint, safe to log.
func (k *Keys) Fingerprint() string { return k.Seal.Fingerprint() }
