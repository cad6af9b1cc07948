package audit

import (
	"encoding/json"
	"fmt"
)

// Event names, one per kind of thing that happens to a shard or the worker.
const (
	EventVramSealed             = "VramSealed"
	EventVramAllocated          = "VramAllocated"
	EventVramAllocationFailed   = "VramAllocationFailed"
	EventSealVerified           = "SealVerified"
	EventSealVerificationFailed = "SealVerificationFailed"
	EventVramDeallocated        = "VramDeallocated"
	EventPolicyViolation        = "PolicyViolation"
	EventWorkerStarted          = "WorkerStarted"
	EventWorkerStopped          = "WorkerStopped"
	EventLogTruncated           = "LogTruncated"
	// EventModelRejected: a model file is not the published model (its
	// digest differs from a digest list or signed manifest, or it is not
	// listed); its seal was refused and its memory freed.
	EventModelRejected = "ModelRejected"
	// EventModelVerified: a model's signed manifest verified and every file
	// sealed from it matched.
	EventModelVerified = "ModelVerified"
	// EventLeaseGranted: the lease server granted another process a lease
	// on a shard's memory.
	EventLeaseGranted = "LeaseGranted"
	// EventLeaseEnded: a lease granted to another process ended (released,
	// disconnected, revoked or dropped).
	EventLeaseEnded = "LeaseEnded"
)

// Severity ranks a record.
type Severity int

// Severities, from routine to fail-stop.
const (
	SeverityInfo Severity = iota + 1
	SeverityWarning
	SeverityCritical
)

var severityNames = map[Severity]string{SeverityInfo: "info", SeverityWarning: "warning", SeverityCritical: "critical"}

// String names the severity: "info", "warning" or "critical".
func (s Severity) String() string {
	if n, ok := severityNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) {
	if _, ok := severityNames[s]; !ok {
		return nil, fmt.Errorf("audit: unknown severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	for k, v := range severityNames {
		if v == string(b) {
			*s = k
			return nil
		}
	}
	return fmt.Errorf("audit: unknown severity %q", b)
}

// Record is one audited event. Fields hold the event's details; they never
// hold a key, token or device address.
type Record struct {
	Event    string         `json:"event"`
	Severity Severity       `json:"severity"`
	Fields   map[string]any `json:"fields,omitempty"`
}

// String renders the record as JSON, for logs and test failures.
func (r Record) String() string {
	b, err := json.Marshal(r)
	if err != nil {
		return r.Event
	}
	return string(b)
}
