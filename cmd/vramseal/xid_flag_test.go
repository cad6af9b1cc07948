package main

import (
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var _ pflag.Value = (*xidListFlag)(nil)

func TestXIDListFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint64
		str     string
		wantErr string
	}{
		{in: "79", want: []uint64{79}, str: "79"},
		{in: "13, 31,43", want: []uint64{13, 31, 43}, str: "13,31,43"},
		{in: "none", want: []uint64{}, str: "none"},
		{in: "", wantErr: `"" is not an XID`},
		{in: "13,,31", wantErr: `"" is not an XID`},
		{in: "13,xid79", wantErr: `"xid79" is not an XID; list XID numbers separated by commas, e.g. 13,31,43, or none`},
		{in: "-1", wantErr: `"-1" is not an XID`},
		{in: "4294967296", wantErr: `"4294967296" is not an XID`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f := newXIDListFlag()
			err := f.Set(tt.in)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				assert.Equal(t, "13,31,43,45,68,109", f.String(), "a bad value changes nothing")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, f.xids)
			assert.NotNil(t, f.xids, "an empty list ignores none; nil would mean the default")
			assert.Equal(t, tt.str, f.String())
		})
	}
}
