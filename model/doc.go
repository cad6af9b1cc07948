// Package model turns a model's files into sealed shards, for the CLI and
// embedders alike, and owns their identity: the safetensors parser
// (ReadSafetensorsHeader, the reference's rules), sha256sum digest lists
// (ReadDigestList), expectations and the streaming Matcher, and OpenSSF Model
// Signing bundles (VerifyModelSignature). It opens the files and checks them before any VRAM is
// allocated (OpenFiles; a model directory and its safetensors index: FindDir,
// Dir.CheckIndex), checks that they are the published model (Identity:
// digest lists and a verified OpenSSF Model Signing signature, with the
// listed files that are not sealed hashed on the host, and every file of a
// signed directory covered by its signature), places each on a
// device (Plan, Place), and seals and verifies them through a
// supervisor.Runtime (SealAll, VerifyAll).
//
// It never prints or exits. Errors wrap the sentinels in messages:
// messages.ErrInvalidInput for a file that cannot be sealed as it is (a
// *FileError names it), messages.ErrModelRejected for one that is not the
// published model, messages.ErrInsufficientVRAM for one that does not fit.
// Progress goes to a *slog.Logger and to SealOptions.Track.
package model
