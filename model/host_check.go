package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"

	"github.com/vramseal/vramseal/internal/safefile"
	"github.com/vramseal/vramseal/messages"
)

// hostCheck is a file of a model directory that a digest source lists but
// that is not sealed (config.json, the tokenizer, the index: upstream
// model_signing signs the whole directory). It is hashed on the host, from
// disk, and must match like a sealed file; only its digest is checked, once,
// before anything is sealed.
type hostCheck struct {
	rel    string // as the sources name it, slash-separated
	path   string
	exps   []Expectation
	signed bool // the signature lists it, not only a digest list
}

// run hashes the file from disk and compares it with every expectation; a
// difference is a *messages.RejectedError (messages.ErrModelRejected).
func (c *hostCheck) run() error {
	f, info, err := safefile.Open(c.path, safefile.Options{})
	if err != nil {
		return fmt.Errorf("%w: model file %s cannot be read (%v); it is listed, so it is checked on the host: make it readable by this user",
			messages.ErrInvalidInput, c.path, safefile.Cause(err))
	}
	defer f.Close()
	m, err := NewMatcher(c.exps, info.Size())
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(h, m), f); err != nil {
		return fmt.Errorf("%w: model file %s cannot be read (%v)", messages.ErrInvalidInput, c.path, safefile.Cause(err))
	}
	return m.Result(hex.EncodeToString(h.Sum(nil)))
}

// runHostChecks runs every check, in order, and logs each file that passed
// as checked on the host and not sealed; it stops at the first failure.
func runHostChecks(checks []*hostCheck, logger *slog.Logger) error {
	for _, c := range checks {
		if err := c.run(); err != nil {
			return err
		}
		what := "listed, checked on host, not sealed"
		if c.signed {
			what = "signed, checked on host, not sealed"
		}
		if logger != nil {
			logger.Info(what, "file", c.rel)
		}
	}
	return nil
}
