// Package secret holds vramseal's key material: the one HKDF-SHA256
// derivation of a key from the worker token, and the buffer a derived key
// lives in. Every key type of the other packages (sealer.Key, audit.Key)
// keeps its bytes in a secret.Key, so that one zeroing rule and one
// redaction rule cover them all: the bytes never leave this package except
// into an HMAC, and no printed, logged or marshalled form shows them.
//
// It sits below sealer and audit, which both derive keys from the same
// token under their own labels.
package secret
