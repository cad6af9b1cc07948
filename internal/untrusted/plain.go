package untrusted

import "fmt"

// maxMessageLen bounds every error message an input can produce: messages
// quote a short prefix of an input, never the whole of it.
const maxMessageLen = 400

// CheckPlain says why msg is not a message an untrusted input may produce:
// longer than maxMessageLen, or holding a byte that is not printable ASCII
// (so no input byte reaches a log or a terminal raw). Fuzz tests of every
// parser hold their errors to it.
func CheckPlain(msg string) error {
	if len(msg) > maxMessageLen {
		return fmt.Errorf("message is %d bytes, over %d: %.200q", len(msg), maxMessageLen, msg)
	}
	for i := range len(msg) {
		if msg[i] < 0x20 || msg[i] >= 0x7f {
			return fmt.Errorf("message byte %d is %#x: %.200q", i, msg[i], msg)
		}
	}
	return nil
}
