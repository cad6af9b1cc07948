package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/model"
)

func TestProgressLogsWhenStderrIsNoTerminal(t *testing.T) {
	var logs bytes.Buffer
	p := &progress{logger: slog.New(slog.NewJSONHandler(&logs, nil))} // logEvery 0: log after every read
	data := strings.Repeat("x", 1000)
	src := model.NewSource("s", int64(len(data)), nil)
	src.Name = "s.bin"

	r, done := p.track(src, 1, strings.NewReader(data))
	got, err := io.ReadAll(io.LimitReader(r, 250))
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, r)
	require.NoError(t, err)
	done()

	assert.Len(t, got, 250, "the reader passes the data through")
	var lines []map[string]any
	for _, text := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var line map[string]any
		require.NoError(t, json.Unmarshal([]byte(text), &line))
		lines = append(lines, line)
	}
	require.GreaterOrEqual(t, len(lines), 2)
	assert.Equal(t, "sealing", lines[0]["msg"])
	assert.EqualValues(t, 1, lines[0]["device"])
	first := lines[1]
	assert.Equal(t, "sealing progress", first["msg"])
	assert.EqualValues(t, 25, first["percent"])
	assert.EqualValues(t, 250, first["bytes"])
	for _, line := range lines[1:] {
		assert.Less(t, line["bytes"], float64(len(data)), "no progress line once every byte is read")
	}
}

func TestProgressDrawsABarOnATerminal(t *testing.T) {
	var out bytes.Buffer
	p := &progress{terminal: true, out: &out, logger: slog.New(slog.DiscardHandler)}
	data := strings.Repeat("x", 3<<20)
	src := model.NewSource("bar-shard", int64(len(data)), nil)

	r, done := p.track(src, 0, strings.NewReader(data))
	_, err := io.Copy(io.Discard, r)
	require.NoError(t, err)
	done()

	assert.Contains(t, out.String(), "sealing bar-shard on device 0")
	assert.Contains(t, out.String(), "100%")
	assert.Contains(t, out.String(), "3.0 MiB")
}
