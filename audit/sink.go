package audit

import "context"

// Sink receives audit records. Record returns only once the record is
// durable, or with an error if it cannot be made so; a caller must not
// acknowledge an operation whose record failed. Implementations are safe for
// concurrent use.
type Sink interface {
	Record(ctx context.Context, r Record) error
}
