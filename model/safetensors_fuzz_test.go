package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// FuzzSafetensorsHeader feeds the header check arbitrary files. It must never
// panic and must refuse only with a *sealer.HeaderError (ErrInvalidInput) and a
// short plain message. What it accepts must hold no duplicate key by
// encoding/json's count, tile the data exactly, and lay out again to an equal
// table. Seeds: testdata/fuzz/FuzzSafetensorsHeader.
func FuzzSafetensorsHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, file []byte) {
		table, err := ReadSafetensorsHeader(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			require.ErrorIs(t, err, messages.ErrInvalidInput)
			var he *sealer.HeaderError
			require.True(t, errors.As(err, &he))
			require.NoError(t, untrusted.CheckPlain(err.Error()))
			return
		}
		var keys map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(file[8:table.DataStart()], &keys), "encoding/json agrees it is an object")
		require.NotContains(t, keys, "", "no tensor has an empty name")
		n := len(table.Tensors)
		if _, ok := keys["__metadata__"]; ok {
			n++ // null or a map
		}
		require.Len(t, keys, n, "no key was counted twice")

		end := table.DataStart()
		for _, x := range table.Tensors {
			require.Equal(t, end, x.Offset, "tensor %q starts where the last ended", x.Name)
			want, err := sealer.TensorBytes(x.Name, x.DType, x.Shape)
			require.NoError(t, err)
			require.Equal(t, int64(want), x.Size)
			end = x.End()
		}
		require.Equal(t, int64(len(file)), end, "the data ends with the file")

		again, err := LayoutSafetensors(table.Metadata, table.Tensors)
		require.NoError(t, err)
		header, err := again.Header()
		require.NoError(t, err)
		back, err := ReadSafetensorsHeader(bytes.NewReader(append(header, make([]byte, again.DataSize())...)), again.FileSize())
		require.NoError(t, err)
		assert.Equal(t, again, back)
		assert.Equal(t, again.Digest(), back.Digest())
	})
}
