package model

import (
	"io"

	"github.com/vramseal/vramseal/internal/safetensors"
	"github.com/vramseal/vramseal/sealer"
)

// MaxSafetensorsHeader is the longest safetensors header accepted, in bytes,
// as in the reference parser.
const MaxSafetensorsHeader = safetensors.MaxSafetensorsHeader

// SafetensorsIndexName is the file a sharded safetensors model lists its
// tensors in: which file holds each.
const SafetensorsIndexName = "model.safetensors.index.json"

// TensorTable is the checked header of a safetensors file: its tensors in
// offset order and its metadata.
type TensorTable = safetensors.TensorTable

// ReadSafetensorsHeader reads and checks the header at the start of r, a
// safetensors file of fileSize bytes, and returns its tensor table. It reads
// only the 8-byte length and the header. Every rule of sealer.HeaderRule is
// checked; a broken one is a *sealer.HeaderError (ErrInvalidInput) naming
// tensor and rule.
func ReadSafetensorsHeader(r io.Reader, fileSize int64) (*TensorTable, error) {
	return safetensors.ReadSafetensorsHeader(r, fileSize)
}

// ParseSafetensorsHeader checks header, the JSON that follows a safetensors
// file's 8-byte length, for a file of fileSize bytes, and returns its tensor
// table. Tensors may appear in any order; the table lists them by offset.
func ParseSafetensorsHeader(header []byte, fileSize int64) (*TensorTable, error) {
	return safetensors.ParseSafetensorsHeader(header, fileSize)
}

// LayoutSafetensors lays tensors out one after another in the order given,
// as a safetensors writer does, and returns the table of a file holding
// them: the file is Header() followed
// by DataSize() bytes of tensor data.
func LayoutSafetensors(metadata map[string]string, tensors []sealer.Tensor) (*TensorTable, error) {
	return safetensors.LayoutSafetensors(metadata, tensors)
}
