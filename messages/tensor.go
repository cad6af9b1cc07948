package messages

// Tensor is one tensor of a safetensors model file: its name, element type,
// shape and where its bytes lie in the file (and so in the shard sealed from
// it, whose byte 0 is the file's byte 0).
type Tensor struct {
	Name  string   `json:"name"`
	DType string   `json:"dtype"`
	Shape []uint64 `json:"shape"`
	// Offset is where the tensor's bytes start, counted from the start of
	// the file (so the 8-byte length and the header come before it).
	Offset int64 `json:"offset"`
	// Size is the tensor's length in bytes.
	Size int64 `json:"size"`
}

// End is the offset just past the tensor's last byte.
func (t Tensor) End() int64 { return t.Offset + t.Size }

// SealCheck checks a seal's bytes against what a publisher says they must
// be, before the seal is acknowledged. The runtime writes every byte of the
// data to it, in order, as the bytes stream to the device (no copy), then
// calls Result with the hex SHA-256 of the whole data. An error from Result
// refuses the seal: its memory is freed and nothing is recorded as sealed.
type SealCheck interface {
	Write(p []byte) (int, error)
	Result(wholeSHA256 string) error
}
