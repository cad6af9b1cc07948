package stress

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vramseal/vramseal/messages"
)

// Fault kinds, as ParseFaults reads them and Report names them.
const (
	// FaultAlloc: a device allocation fails (retriable).
	FaultAlloc = "alloc"
	// FaultCopy: a copy to the device stops part-way (the seal fails).
	FaultCopy = "copy"
	// FaultRead: a device read fails, in a burst shorter than the runtime's
	// read retries, so the runtime must absorb it.
	FaultRead = "read"
	// FaultBitFlip: one bit of a live shard flips (fatal).
	FaultBitFlip = "bitflip"
	// FaultLost: a device is lost (fatal).
	FaultLost = "lost"
)

// faultKinds lists the kinds in the order reports show them.
var faultKinds = []string{FaultAlloc, FaultCopy, FaultRead, FaultBitFlip, FaultLost}

// Faults are the rates, each a probability from 0 to 1, at which the
// harness injects each kind of fault. The fatal ones, BitFlip and Lost,
// start once the run has released its first shard, so that every run
// exercises release however high their rates.
type Faults struct {
	// Alloc is the chance that one device allocation fails.
	Alloc float64 `json:"alloc"`
	// Copy is the chance that one chunk copied to a device stops part-way.
	Copy float64 `json:"copy"`
	// Read is the chance that one device read starts a burst of failures.
	Read float64 `json:"read"`
	// BitFlip is the chance, per acknowledged seal, that a bit of the new
	// shard flips.
	BitFlip float64 `json:"bitflip"`
	// Lost is the chance, per seal attempt, that the device it targets is
	// lost just before.
	Lost float64 `json:"lost"`
}

// DefaultFaults are the rates `vramseal stress --faults default` uses.
func DefaultFaults() Faults {
	return Faults{Alloc: 0.01, Copy: 0.005, Read: 0.01, BitFlip: 0.001, Lost: 0.0002}
}

// ParseFaults reads "default", "none", or a comma-separated list of
// kind=rate such as "alloc=0.01,copy=0.005,read=0.01,bitflip=0.001,lost=0.0002".
// Kinds a list leaves out get rate 0. Errors wrap messages.ErrInvalidInput.
func ParseFaults(s string) (Faults, error) {
	switch strings.TrimSpace(s) {
	case "default":
		return DefaultFaults(), nil
	case "none":
		return Faults{}, nil
	case "":
		return Faults{}, fmt.Errorf("%w: faults: empty; want default, none or a list such as alloc=0.01,bitflip=0.001", messages.ErrInvalidInput)
	}
	var f Faults
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		kind, value, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return Faults{}, fmt.Errorf("%w: faults: %q is not kind=rate", messages.ErrInvalidInput, item)
		}
		rate := f.rate(kind)
		if rate == nil {
			return Faults{}, fmt.Errorf("%w: faults: unknown kind %q; kinds are %s", messages.ErrInvalidInput, kind, strings.Join(faultKinds, ", "))
		}
		if seen[kind] {
			return Faults{}, fmt.Errorf("%w: faults: %s given twice", messages.ErrInvalidInput, kind)
		}
		seen[kind] = true
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || !(v >= 0 && v <= 1) {
			return Faults{}, fmt.Errorf("%w: faults: %s=%q is not a probability from 0 to 1", messages.ErrInvalidInput, kind, value)
		}
		*rate = v
	}
	return f, nil
}

// rate points at the rate of kind, or is nil for an unknown kind.
func (f *Faults) rate(kind string) *float64 {
	switch kind {
	case FaultAlloc:
		return &f.Alloc
	case FaultCopy:
		return &f.Copy
	case FaultRead:
		return &f.Read
	case FaultBitFlip:
		return &f.BitFlip
	case FaultLost:
		return &f.Lost
	}
	return nil
}

// String writes the rates as ParseFaults reads them.
func (f Faults) String() string {
	parts := make([]string, len(faultKinds))
	for i, kind := range faultKinds {
		parts[i] = kind + "=" + strconv.FormatFloat(*f.rate(kind), 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}
