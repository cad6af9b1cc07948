// Package untrusted words untrusted input for error messages: only a short,
// escaped prefix of it ever reaches a message.
package untrusted

import "strconv"

// quoteLimit is how many bytes of a rejected input a message quotes.
const quoteLimit = 32

// Quote quotes at most the first 32 bytes of s, escaped to ASCII (so
// look-alike letters show as \u escapes), and marks a cut with "...".
func Quote(s string) string {
	if len(s) <= quoteLimit {
		return strconv.QuoteToASCII(s)
	}
	return strconv.QuoteToASCII(s[:quoteLimit]) + "..."
}
