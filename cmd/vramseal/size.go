package main

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// sizeUnits are the units a size may carry, by lower-case name: decimal units
// are 1000-based, binary units 1024-based.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
}

// binaryUnits are the units formatSize prefers, largest first.
var binaryUnits = []struct {
	name string
	size int64
}{{"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

const sizeHint = "use a number with B, KB, MB, GB, TB (1000-based) or KiB, MiB, GiB, TiB (1024-based), e.g. 512MiB or 1.5GB"

// parseSize reads a byte count such as "512MiB", "2GiB", "1.5GB" or
// "1048576". Units are case-insensitive; a fractional size is rounded down to
// whole bytes. Negative sizes and sizes beyond int64 are refused.
func parseSize(s string) (int64, error) {
	text := strings.TrimSpace(s)
	split := strings.IndexFunc(text, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if split < 0 {
		split = len(text)
	}
	number, unit := text[:split], strings.TrimSpace(text[split:])
	if strings.HasPrefix(text, "-") {
		return 0, fmt.Errorf("size %q is negative; sizes are zero or more bytes", s)
	}
	if number == "" || strings.Count(number, ".") > 1 || number == "." {
		return 0, fmt.Errorf("size %q has no number; %s", s, sizeHint)
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("size %q has unknown unit %q; %s", s, unit, sizeHint)
	}
	value, ok := new(big.Rat).SetString(number)
	if !ok {
		return 0, fmt.Errorf("size %q has no number; %s", s, sizeHint)
	}
	bytes := new(big.Int).Quo(new(big.Int).Mul(value.Num(), big.NewInt(mult)), value.Denom())
	if !bytes.IsInt64() {
		return 0, fmt.Errorf("size %q is too large; the limit is %d bytes", s, int64(^uint64(0)>>1))
	}
	return bytes.Int64(), nil
}

// formatSize writes n in the largest binary unit that divides it exactly,
// such as "2GiB" or "64KiB", and otherwise in bytes, so that parseSize reads
// it back unchanged.
func formatSize(n int64) string {
	for _, u := range binaryUnits {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// sizeFlag is a flag holding a byte count written as parseSize reads it.
type sizeFlag struct{ bytes int64 }

// String is the size in the form formatSize writes.
func (f *sizeFlag) String() string { return formatSize(f.bytes) }

// Set parses a size.
func (f *sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	f.bytes = n
	return nil
}

// Type names the flag's kind in --help.
func (f *sizeFlag) Type() string { return "size" }

// rateFlag is a flag holding bytes per second, written as a size with an
// optional "/s" ("1GiB/s"); 0 or "unlimited" means no limit.
type rateFlag struct{ bytesPerSecond int64 }

// String is the rate, or "unlimited".
func (f *rateFlag) String() string {
	if f.bytesPerSecond == 0 {
		return "unlimited"
	}
	return formatSize(f.bytesPerSecond) + "/s"
}

// Set parses a rate.
func (f *rateFlag) Set(s string) error {
	text := strings.TrimSpace(s)
	if strings.EqualFold(text, "unlimited") {
		f.bytesPerSecond = 0
		return nil
	}
	n, err := parseSize(strings.TrimSuffix(text, "/s"))
	if err != nil {
		return fmt.Errorf("rate %q: %w (per second, or \"unlimited\")", s, err)
	}
	f.bytesPerSecond = n
	return nil
}

// Type names the flag's kind in --help.
func (f *rateFlag) Type() string { return "size/s" }
