package messages

import (
	"encoding/json"
	"io"
	"time"
)

// SealRequest asks the runtime to seal one shard onto one device.
type SealRequest struct {
	// Device is the index of the device to seal onto.
	Device int
	// ID names the shard; empty gets an opaque generated ID.
	ID string
	// Data supplies exactly Size bytes of weights.
	Data io.Reader
	// Size is the number of bytes Data supplies.
	Size int64
	// ModelRef names the model the shard belongs to, for the record.
	ModelRef string
	// ShardIndex and TotalShards place the shard within its model.
	ShardIndex, TotalShards int
	// Tensors is the checked tensor table of a safetensors file (see
	// model.ReadSafetensorsHeader), in offset order; nil for opaque data.
	// It becomes part of the shard's signed record.
	Tensors []Tensor
	// Check, if set, must accept the data before the seal is acknowledged;
	// a refusal frees the memory and is recorded as ModelRejected.
	Check SealCheck
}

// Capacity is one device's memory as the runtime accounts for it.
type Capacity struct {
	// Device is the device index.
	Device int
	// Total is the device's memory in bytes.
	Total int64
	// Free is the device's free memory in bytes.
	Free int64
	// Held is what this runtime holds: live shards plus seals in progress.
	Held int64
	// Pending is the part of Held that belongs to seals in progress.
	Pending int64
	// Headroom is the memory kept free by configuration.
	Headroom int64
	// Shards is the number of live shards.
	Shards int
}

// ShardStatus describes one live shard.
type ShardStatus struct {
	ID       string    `json:"id"`
	Device   int       `json:"device"`
	Size     int64     `json:"size"`
	Digest   string    `json:"digest"`
	ModelRef string    `json:"model_ref,omitempty"`
	SealedAt time.Time `json:"sealed_at"`
	// LastVerified is when every chunk of the shard was last re-hashed and
	// matched; zero if never since sealing (null in JSON).
	LastVerified time.Time `json:"last_verified"`
	// Tensors is the shard's tensor table (name, dtype, shape, offset and
	// size in the file); empty for opaque data.
	Tensors []Tensor `json:"tensors,omitempty"`
}

// MarshalJSON is the form the worker's /shards endpoint serves: the fields
// above, last_verified null until the shard is first fully verified. It
// holds no device address.
func (s ShardStatus) MarshalJSON() ([]byte, error) {
	type plain ShardStatus // without this method
	var last *time.Time
	if !s.LastVerified.IsZero() {
		last = &s.LastVerified
	}
	return json.Marshal(struct {
		plain
		LastVerified *time.Time `json:"last_verified"`
	}{plain(s), last})
}

// ModelVerified describes a model whose signed manifest verified and whose
// sealed files all matched it, for its audit record.
type ModelVerified struct {
	// KeyFingerprint is the hex SHA-256 of the signer's PEM public key.
	KeyFingerprint string
	// Subject and SubjectDigest are the signed model name and root digest.
	Subject, SubjectDigest string
	// Method is the manifest's serialization method, "files" or "shards".
	Method string
	// Source names the signature file.
	Source string
	// Files is how many files were sealed and matched.
	Files int
	// Uncovered are the model's files the signature does not cover, let
	// through by --allow-unlisted or --allow-unsigned-files; nil when it
	// covers every file.
	Uncovered []string
}
