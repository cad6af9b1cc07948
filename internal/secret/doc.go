// Package secret holds vramseal's key material: the one HKDF-SHA256
// derivation of a key from the worker token, and the buffer a derived key
// lives in. Every key type of the other packages is a secret.Key of its own
// Purpose (sealer.Key, audit.Key), so that one zeroing rule and one
// redaction rule, written once here, cover them all: the bytes never leave this package except
// into an HMAC, and no printed, logged or marshalled form shows them.
//
// It sits below sealer and audit, which both derive keys from the same
// token under their own labels.
package secret
