package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
)

// checkPolicy refuses devices whose memory is not dedicated VRAM, recording
// each violation as critical, before anything is sealed.
func checkPolicy(ctx context.Context, cfg Config) error {
	var errs []error
	for i, dev := range cfg.Devices {
		err := cuda.CheckVRAMPolicy(dev.Properties())
		if err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("device %d: %w", i, err))
		if recErr := cfg.Audit.Record(ctx, audit.Record{Event: audit.EventPolicyViolation, Severity: audit.SeverityCritical, Fields: map[string]any{
			"device": i, "policy": "vram_only", "reason": err.Error(),
		}}); recErr != nil {
			errs = append(errs, fmt.Errorf("%w: %w", errAudit, recErr))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return nil
}
