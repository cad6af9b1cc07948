package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/secret"
)

// OpenConfig configures Open: where the worker's token and audit log are,
// and the rest of its configuration.
type OpenConfig struct {
	// TokenFile holds the worker token, with the CLI's checks: a regular
	// file that only its owner (this user or root) may access, holding at
	// least MinTokenLen bytes once one trailing newline is cut. Required.
	TokenFile string
	// AuditLog is the path of the audit log: created if missing, continued
	// if this token and Config.WorkerID wrote it, refused (ErrIntegrityViolation)
	// otherwise. Empty means no audit log: the records are discarded.
	AuditLog string
	// Config is the rest of the runtime's configuration, as for Start; its
	// WorkerID is required and names the worker in the keys and the log.
	// Its Key and Audit must be left nil: Open makes them.
	Config Config
}

// Open starts a Runtime from a token file: it reads the token (checked as
// the CLI checks it), derives both keys from it for Config.WorkerID
// (zeroing the token), opens the audit log at AuditLog, and calls Start.
// The runtime owns what Open made: it fail-stops if the log fails, even
// while idle (ErrLogFailed), and once it has stopped (Stop, or the end of a
// fail-stop) it closes the log and zeroes the keys. As with Start, the runtime owns
// Config.Devices from the call on, also when Open fails.
func Open(ctx context.Context, oc OpenConfig) (*Runtime, error) {
	cfg, err := oc.prepare()
	if err != nil {
		closeDevices(oc.Config.Devices)
		return nil, fmt.Errorf("open: %w", err)
	}
	rt, err := Start(ctx, cfg)
	if err != nil {
		return nil, errors.Join(err, cfg.owned.close())
	}
	return rt, nil
}

// prepare reads the token, derives the keys and opens the audit log: the
// config Open starts.
func (oc OpenConfig) prepare() (Config, error) {
	cfg := oc.Config
	switch {
	case oc.TokenFile == "":
		return cfg, fmt.Errorf("%w: no token file", ErrConfig)
	case cfg.Key != nil || cfg.Audit != nil:
		return cfg, fmt.Errorf("%w: Config.Key and Config.Audit are Open's to make", ErrConfig)
	case cfg.WorkerID == "":
		return cfg, fmt.Errorf("%w: no worker ID", ErrConfig)
	}
	token, err := secret.ReadTokenFile(oc.TokenFile)
	if err != nil {
		return cfg, err
	}
	keys, err := DeriveKeys(token, cfg.WorkerID)
	if err != nil {
		return cfg, err
	}
	owned := &ownedByRuntime{keys: keys}
	cfg.Key, cfg.Audit, cfg.owned = keys.Seal, discardAudit{}, owned
	if oc.AuditLog != "" {
		log, err := audit.Open(oc.AuditLog, audit.LogConfig{Key: keys.Audit, WorkerID: cfg.WorkerID, Logger: cfg.Logger})
		if err != nil {
			keys.Zero()
			return cfg, err
		}
		owned.log, cfg.Audit = log, log
	}
	keys.Audit.Zero() // the log keeps what it needs
	return cfg, nil
}

// ownedByRuntime is what Open made for the runtime, which closes it once
// it has stopped.
type ownedByRuntime struct {
	keys *Keys
	log  *audit.Log
}

// auditLog is the log Open opened, or nil. It is nil-safe.
func (o *ownedByRuntime) auditLog() *audit.Log {
	if o == nil {
		return nil
	}
	return o.log
}

// close closes the audit log and zeroes the keys. It is nil-safe and
// idempotent.
func (o *ownedByRuntime) close() error {
	if o == nil {
		return nil
	}
	var err error
	if o.log != nil {
		err = o.log.Close()
	}
	o.keys.Zero()
	return err
}

// watchLog fail-stops the runtime once the audit log Open opened fails,
// even while nothing is being recorded (removed or replaced underneath). It
// returns once stopping begins.
func (r *Runtime) watchLog(log *audit.Log) {
	select {
	case <-log.Failed():
		r.fail(log.Err())
	case <-r.stopCtx.Done():
	}
}

// discardAudit is the sink of a runtime opened without an audit log.
type discardAudit struct{}

// Record discards r.
func (discardAudit) Record(context.Context, audit.Record) error { return nil }
