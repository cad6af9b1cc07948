package actors

import (
	"fmt"
	"strings"

	"github.com/vramseal/vramseal/sealer"
)

// overlappingTensorNames names the tensors of a shard's table that share a
// byte with [off, off+n).
func overlappingTensorNames(tensors []sealer.Tensor, off, n int64) []string {
	var names []string
	for _, t := range sealer.OverlappingTensors(tensors, off, off+n) {
		names = append(names, t.Name)
	}
	return names
}

// tensorsPhrase is ", tensor a, b" for an error message, or "" for none.
// Names are quoted with Go escapes, so no byte of them reaches a log raw.
func tensorsPhrase(names []string) string {
	if len(names) == 0 {
		return ""
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%+q", n)
	}
	word := "tensor"
	if len(names) > 1 {
		word = "tensors"
	}
	return ", " + word + " " + strings.Join(q, ", ")
}
