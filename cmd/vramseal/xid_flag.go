package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vramseal/vramseal/gpuhealth"
)

// xidListFlag is --ignore-xids: the NVIDIA XIDs that an application causes,
// not the GPU, so that a health event carrying one is logged and does not
// fail-stop the worker. "none" makes every critical XID fatal.
type xidListFlag struct {
	// xids is never nil: for gpuhealth.HealthConfig.IgnoredXIDs an empty list
	// ignores none, while nil would mean the default.
	xids []uint64
}

// newXIDListFlag holds gpuhealth.DefaultIgnoredXIDs.
func newXIDListFlag() xidListFlag { return xidListFlag{xids: gpuhealth.DefaultIgnoredXIDs()} }

// String is the list as the flag takes it, such as "13,31,43".
func (f *xidListFlag) String() string {
	if len(f.xids) == 0 {
		return "none"
	}
	parts := make([]string, len(f.xids))
	for i, xid := range f.xids {
		parts[i] = strconv.FormatUint(xid, 10)
	}
	return strings.Join(parts, ",")
}

// Set replaces the list with s: XIDs separated by commas, or "none".
func (f *xidListFlag) Set(s string) error {
	if s == "none" {
		f.xids = []uint64{}
		return nil
	}
	var xids []uint64
	for part := range strings.SplitSeq(s, ",") {
		xid, err := strconv.ParseUint(strings.TrimSpace(part), 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not an XID; list XID numbers separated by commas, e.g. 13,31,43, or none", part)
		}
		xids = append(xids, xid)
	}
	f.xids = xids
	return nil
}

// Type names the flag's form in --help.
func (f *xidListFlag) Type() string { return "XID,...|none" }
