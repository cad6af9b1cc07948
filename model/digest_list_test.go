package model

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
)

const (
	sumA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	sumB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestReadDigestListFormats(t *testing.T) {
	list := strings.Join([]string{
		"# published with the model",
		"",
		"   ",
		sumA + "  model-00001-of-00002.safetensors",
		strings.ToUpper(sumB) + " *model-00002-of-00002.safetensors\r",
		`\` + sumA + `  dir/we\\ird\nname`,
		"SHA256 (./tagged.safetensors) = " + sumB,
		"  # indented comment",
		sumB + "  ./sub/../config.json",
		sumA + "  with  two  spaces ",
	}, "\n")
	l, err := ReadDigestList(strings.NewReader(list), "sha256sums.txt")
	require.NoError(t, err)
	want := map[string]string{
		"model-00001-of-00002.safetensors": sumA,
		"model-00002-of-00002.safetensors": sumB,
		"dir/we\\ird\nname":                sumA,
		"tagged.safetensors":               sumB,
		"config.json":                      sumB,
		"with  two  spaces ":               sumA,
	}
	assert.Equal(t, len(want), l.Len())
	for name, sum := range want {
		e, ok := l.Lookup(name)
		require.True(t, ok, "%q", name)
		assert.Equal(t, sum, e.SHA256)
		assert.Equal(t, name, e.Name)
		assert.Contains(t, e.Source, "sha256sums.txt line ")
	}
	e, ok := l.Lookup("./model-00001-of-00002.safetensors")
	require.True(t, ok, "names are compared cleaned")
	assert.Equal(t, "sha256sums.txt line 4", e.Source)
	_, ok = l.Lookup("missing")
	assert.False(t, ok)
}

func TestReadDigestListRefusesBadLines(t *testing.T) {
	tests := map[string]struct{ list, want string }{
		"short digest":           {"abc  model.safetensors", "line 1"},
		"not hex":                {strings.Repeat("g", 64) + "  m", "not 64 hex"},
		"no name":                {sumA + " ", "line 1"},
		"forms mixed":            {sumA + "  m\n" + sumB + " n", "line 2: it mixes"},
		"forms mixed, other way": {sumA + " m\n" + sumB + " *n", "line 2: it mixes"},
		"digest only":            {sumA, "line 1"},
		"bad escape":             {`\` + sumA + `  a\x`, "unknown escape"},
		"lone backslash":         {`\` + sumA + `  a\`, "lone"},
		"listed twice":           {sumA + "  m\n" + sumB + "  ./m", "line 2: \"m\" is listed already with another digest (list line 1)"},
		"empty":                  {"# nothing\n\n", "lists no digests"},
		"tag with bad digest":    {"SHA256 (m) = 12", "not 64 hex"},
		"later bad line":         {sumA + "  m\n\nnonsense", "list line 3"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ReadDigestList(strings.NewReader(tt.list), "list")
			require.ErrorIs(t, err, messages.ErrInvalidInput)
			assert.Contains(t, err.Error(), tt.want)
			require.NoError(t, untrusted.CheckPlain(err.Error()))
		})
	}
}

func TestReadDigestListReadsWhatSha256sumChecks(t *testing.T) {
	for name, tt := range map[string]struct {
		list string
		want map[string]string
	}{
		"escaped tag line":      {`\SHA256 (a\\b) = ` + sumA, map[string]string{`a\b`: sumA}},
		"escaped tag newline":   {`\SHA256 (a\nb) = ` + sumA, map[string]string{"a\nb": sumA}},
		"tag without space":     {"SHA256(m) = " + sumA, map[string]string{"m": sumA}},
		"tag name with ) = ":    {"SHA256 (a) = b) = " + sumA, map[string]string{"a) = b": sumA}},
		"one space (reversed)":  {sumA + " m\n" + sumB + " n", map[string]string{"m": sumA, "n": sumB}},
		"tab":                   {sumA + "\tm", map[string]string{"m": sumA}},
		"tab then space":        {sumA + "\t m", map[string]string{"m": sumA}},
		"tab then star":         {sumA + "\t*m", map[string]string{"m": sumA}},
		"indented":              {"  " + sumA + "  m", map[string]string{"m": sumA}},
		"the same line twice":   {sumA + "  m\n" + sumA + "  m", map[string]string{"m": sumA}},
		"the same file as ./":   {sumA + "  m\n" + strings.ToUpper(sumA) + "  ./m", map[string]string{"m": sumA}},
		"escaped standard line": {`\` + sumA + `  a\\b`, map[string]string{`a\b`: sumA}},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := ReadDigestList(strings.NewReader(tt.list), "list")
			require.NoError(t, err)
			assert.Equal(t, len(tt.want), l.Len())
			for n, sum := range tt.want {
				e, ok := l.Lookup(n)
				require.True(t, ok, "%q", n)
				assert.Equal(t, sum, e.SHA256)
			}
		})
	}
}

func TestParseExpectSHA256(t *testing.T) {
	name, sum, err := ParseExpectSHA256("./a=b.safetensors=" + strings.ToUpper(sumB))
	require.NoError(t, err)
	assert.Equal(t, "a=b.safetensors", name)
	assert.Equal(t, sumB, sum)

	l := NewDigestList()
	require.NoError(t, l.Add(name, sum, "--expect-sha256"))
	assert.ErrorIs(t, l.Add("a=b.safetensors", sumA, "--expect-sha256"), messages.ErrInvalidInput)

	for _, bad := range []string{"", "model", "=" + sumA, "m=", "m=" + sumA[:63], "m=" + sumA + "0"} {
		_, _, err := ParseExpectSHA256(bad)
		assert.ErrorIs(t, err, messages.ErrInvalidInput, "%q", bad)
	}
}

func TestExpectationCheck(t *testing.T) {
	ok := Expectation{Name: "m", Source: "s", Ranges: []RangeDigest{{0, 10, sumA}, {10, 15, sumB}}}
	require.NoError(t, ok.Check(15))
	assert.ErrorIs(t, ok.Check(16), messages.ErrModelRejected, "a longer file is not the published one")
	assert.ErrorIs(t, ok.Check(14), messages.ErrModelRejected)
	require.NoError(t, Expectation{Name: "m", Source: "s", SHA256: sumA}.Check(1))
	for name, e := range map[string]Expectation{
		"nothing":    {Name: "m", Source: "s"},
		"upper hex":  {Name: "m", Source: "s", SHA256: strings.ToUpper(sumB)},
		"gap":        {Name: "m", Source: "s", Ranges: []RangeDigest{{0, 10, sumA}, {11, 15, sumB}}},
		"overlap":    {Name: "m", Source: "s", Ranges: []RangeDigest{{0, 10, sumA}, {9, 15, sumB}}},
		"not from 0": {Name: "m", Source: "s", Ranges: []RangeDigest{{1, 15, sumA}}},
		"empty":      {Name: "m", Source: "s", Ranges: []RangeDigest{{0, 0, sumA}, {0, 15, sumA}}},
		"bad digest": {Name: "m", Source: "s", Ranges: []RangeDigest{{0, 15, "x"}}},
	} {
		assert.ErrorIs(t, e.Check(15), messages.ErrInvalidInput, name)
	}
}
