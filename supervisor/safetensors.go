package supervisor

import (
	"bytes"
	"fmt"
	"io"

	"github.com/vramseal/vramseal/internal/safetensors"
)

// SafetensorsRequest checks the header of a safetensors file of size bytes,
// with the reference parser's rules, and returns the request that seals
// the file as shard id with its tensor table: the signed record and every
// Lease on the shard carry the table (Lease.Tensor). A broken rule is an
// error wrapping ErrInvalidInput that names the tensor and the rule. The
// request streams the header bytes it checked, then the rest of file, so a
// header rewritten in between cannot seal under a stale table. Set Device,
// ModelRef and the rest as for any seal; file must stay readable until Seal
// returns.
func SafetensorsRequest(id string, file io.ReaderAt, size int64) (SealRequest, error) {
	var header bytes.Buffer
	table, err := safetensors.ReadSafetensorsHeader(io.TeeReader(io.NewSectionReader(file, 0, size), &header), size)
	if err != nil {
		return SealRequest{}, fmt.Errorf("safetensors %+q: %w", id, err)
	}
	return SealRequest{
		ID:      id,
		Size:    size,
		Tensors: table.Tensors,
		Data:    io.MultiReader(&header, io.NewSectionReader(file, table.DataStart(), size-table.DataStart())),
	}, nil
}
