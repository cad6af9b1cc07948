package sealer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
)

// shardJSON is the wire form of a Shard. Signature is absent when the record
// is unsigned.
type shardJSON struct {
	ID          string `json:"id"`
	Device      int    `json:"device"`
	Size        int64  `json:"size"`
	Digest      string `json:"digest"`
	ChunkSize   int64  `json:"chunk_size"`
	ChunkRoot   string `json:"chunk_root"`
	SealedAt    string `json:"sealed_at"`
	ModelRef    string `json:"model_ref"`
	ShardIndex  int    `json:"shard_index"`
	TotalShards int    `json:"total_shards"`
	Generation  uint64 `json:"generation"`
	// Tensors is absent for opaque data.
	Tensors   []Tensor `json:"tensors,omitempty"`
	Signature string   `json:"signature,omitempty"`
}

// MarshalJSON writes the record as a JSON object with snake_case names,
// SealedAt in RFC 3339 UTC with nanoseconds, and the signature, if any, as
// hex under "signature". It fails only when SealedAt is outside years 0-9999.
func (s Shard) MarshalJSON() ([]byte, error) {
	at, err := s.SealedAt.UTC().MarshalText()
	if err != nil {
		return nil, fmt.Errorf("%w: shard %s: sealed_at: %v", messages.ErrInvalidInput, untrusted.Quote(s.ID), err)
	}
	return json.Marshal(shardJSON{
		ID: s.ID, Device: s.Device, Size: s.Size, Digest: s.Digest,
		ChunkSize: s.ChunkSize, ChunkRoot: s.ChunkRoot, SealedAt: string(at),
		ModelRef: s.ModelRef, ShardIndex: s.ShardIndex, TotalShards: s.TotalShards, Generation: s.Generation,
		Tensors: s.Tensors, Signature: hex.EncodeToString(s.signature),
	})
}

// UnmarshalJSON reads a record written by MarshalJSON, strictly: one JSON
// object with exactly the known names, each once and spelled exactly, every
// field but "signature" present and not null, values of the right type, an
// RFC 3339 time (kept in UTC), a signature, if present, of 64 lowercase hex
// digits, and, if unsigned, a well-formed record (as Sign requires). Any
// other input gives an error wrapping messages.ErrInvalidInput and leaves s
// unchanged. It does not check the signature, nor a signed record's form:
// CheckSignature checks both, the signature first, so that a signed record
// altered into a malformed one is an integrity failure.
func (s *Shard) UnmarshalJSON(data []byte) error {
	w, err := decodeShardJSON(data)
	if err != nil {
		return fmt.Errorf("%w: shard record: %v", messages.ErrInvalidInput, err)
	}
	at, err := time.Parse(time.RFC3339Nano, w.SealedAt)
	if err == nil {
		at = at.UTC()
		_, err = at.MarshalText() // the year in UTC must be one RFC 3339 can write
	}
	if err != nil {
		return fmt.Errorf("%w: shard record: sealed_at %s: want an RFC 3339 time in years 0000 to 9999 UTC",
			messages.ErrInvalidInput, untrusted.Quote(w.SealedAt))
	}
	rec := Shard{
		ID: w.ID, Device: w.Device, Size: w.Size, Digest: w.Digest,
		ChunkSize: w.ChunkSize, ChunkRoot: w.ChunkRoot, SealedAt: at,
		ModelRef: w.ModelRef, ShardIndex: w.ShardIndex, TotalShards: w.TotalShards, Generation: w.Generation,
		Tensors: w.Tensors,
	}
	if w.Signature == "" {
		if err := validateRecord(&rec); err != nil {
			return err
		}
	} else {
		// A signed record is checked against its signature before its
		// form (CheckSignature), so that one altered into a malformed
		// record is an integrity failure, not invalid input.
		if err := ValidateHexSum("signature", w.Signature); err != nil {
			return fmt.Errorf("shard %s: %w", untrusted.Quote(rec.ID), err)
		}
		rec.signature, _ = hex.DecodeString(w.Signature) // checked just above
	}
	*s = rec
	return nil
}

// decodeShardJSON reads the wire form, rejecting what encoding/json would let
// through: names in another case, repeated names, nulls, missing fields, an
// empty signature, and anything after the object. Its errors never quote
// more than a short prefix of the input.
func decodeShardJSON(data []byte) (shardJSON, error) {
	var w shardJSON
	fields := []wireField{
		{"id", &w.ID, false}, {"device", &w.Device, false}, {"size", &w.Size, false}, {"digest", &w.Digest, false},
		{"chunk_size", &w.ChunkSize, false}, {"chunk_root", &w.ChunkRoot, false}, {"sealed_at", &w.SealedAt, false},
		{"model_ref", &w.ModelRef, false}, {"shard_index", &w.ShardIndex, false}, {"total_shards", &w.TotalShards, false},
		{"generation", &w.Generation, false},
		{"tensors", &w.Tensors, true}, {"signature", &w.Signature, true},
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return w, errors.New("want a JSON object")
	}
	seen := make([]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return w, malformed(dec, err)
		}
		name, _ := tok.(string) // inside an object, Token yields string keys
		i := slices.IndexFunc(fields, func(f wireField) bool { return f.name == name })
		if i < 0 {
			return w, fmt.Errorf("unknown field %s", untrusted.Quote(name))
		}
		if seen[i] {
			return w, fmt.Errorf("field %q appears twice", name)
		}
		seen[i] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return w, malformed(dec, err)
		}
		if string(raw) == "null" {
			return w, fmt.Errorf("field %q is null", name)
		}
		if err := decodeStrict(raw, fields[i].target); err != nil {
			return w, fmt.Errorf("field %q: want %s", name, jsonKind(fields[i].target))
		}
		if name == "signature" && w.Signature == "" {
			return w, errors.New("field \"signature\" is empty; leave it out when unsigned")
		}
		if name == "tensors" && len(w.Tensors) == 0 {
			return w, errors.New("field \"tensors\" is empty; leave it out for opaque data")
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return w, malformed(dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return w, errors.New("data after the JSON object")
	}
	for i, f := range fields {
		if !seen[i] && !f.optional {
			return w, fmt.Errorf("field %q is missing", f.name)
		}
	}
	return w, nil
}

// malformed describes a JSON syntax error without quoting the input, whose
// bytes encoding/json would put in its message raw.
func malformed(dec *json.Decoder, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("JSON ends early")
	}
	return fmt.Errorf("malformed JSON near byte %d", dec.InputOffset())
}

// wireField is one name of the wire form and where its value goes.
type wireField struct {
	name     string
	target   any
	optional bool
}

// decodeStrict decodes one value into target, refusing unknown names in
// nested objects (a tensor's fields).
func decodeStrict(raw json.RawMessage, target any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(target)
}

// jsonKind names the JSON value a decode target wants.
func jsonKind(target any) string {
	switch target.(type) {
	case *string:
		return "a string"
	case *[]Tensor:
		return "an array of tensors (name, dtype, shape, offset, size)"
	}
	return "an integer"
}
