package main

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSizeReadsDecimalAndBinaryUnits(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1048576", 1 << 20},
		{"512B", 512},
		{"1KB", 1000},
		{"1kb", 1000},
		{"1KiB", 1024},
		{"512MiB", 512 << 20},
		{"2GiB", 2 << 30},
		{"2gib", 2 << 30},
		{"1.5GB", 1_500_000_000},
		{"1.5GiB", 3 << 29},
		{" 64 KiB ", 64 << 10},
		{"1TB", 1e12},
		{"1PiB", 1 << 50},
		{"0.5KiB", 512},
		{"1.0001KiB", 1024}, // 1024.1024 bytes, rounded down
		{"9223372036854775807", math.MaxInt64},
		{"8191PiB", 8191 << 50},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseSizeRefusesWhatItCannotReadAndSaysWhy(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"", "has no number"},
		{"GiB", "has no number"},
		{".", "has no number"},
		{"1.2.3MiB", "has no number"},
		{"2G", `unknown unit "G"`},
		{"2 gigabytes", `unknown unit "gigabytes"`},
		{"1e9", `unknown unit "e9"`},
		{"-1GiB", "is negative"},
		{"1-GiB", `unknown unit "-GiB"`},
		{"9223372036854775808", "too large"},
		{"8192PiB", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := parseSize(tt.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Contains(t, err.Error(), strconv.Quote(tt.in), "the message quotes the input")
		})
	}
}

func TestFormatSizeIsReadBackByParseSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1000, "1000"},
		{64 << 10, "64KiB"},
		{4 << 20, "4MiB"},
		{2 << 30, "2GiB"},
		{3 << 29, "1536MiB"},
		{1 << 50, "1PiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, formatSize(tt.n))
			back, err := parseSize(formatSize(tt.n))
			require.NoError(t, err)
			assert.Equal(t, tt.n, back)
		})
	}
}

func TestRateFlagTakesSizesPerSecondOrUnlimited(t *testing.T) {
	tests := []struct {
		in         string
		want       int64
		wantString string
	}{
		{"1GiB/s", 1 << 30, "1GiB/s"},
		{"512MiB", 512 << 20, "512MiB/s"},
		{"unlimited", 0, "unlimited"},
		{"0", 0, "unlimited"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f := rateFlag{bytesPerSecond: 7}
			require.NoError(t, f.Set(tt.in))
			assert.Equal(t, tt.want, f.bytesPerSecond)
			assert.Equal(t, tt.wantString, f.String())
		})
	}
	var f rateFlag
	err := f.Set("fast")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `rate "fast"`)
}

func FuzzParseSize(f *testing.F) {
	for _, seed := range []string{"0", "2GiB", "1.5GB", "512MiB", " 64 KiB ", "1.2.3", "-1", "9223372036854775808", "1e9", "\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("parseSize(%q) = %d, negative", s, n)
		}
		back, err := parseSize(formatSize(n))
		if err != nil || back != n {
			t.Fatalf("formatSize(%d) = %q reads back as %d, %v", n, formatSize(n), back, err)
		}
	})
}

func FuzzRateFlag(f *testing.F) {
	for _, seed := range []string{"1GiB/s", "unlimited", "UNLIMITED", "0", "64MiB", "1.5GB/s", "/s", "-1/s", "1GiB//s", "9223372036854775807/s"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r rateFlag
		if err := r.Set(s); err != nil {
			return
		}
		if r.bytesPerSecond < 0 {
			t.Fatalf("rate %q = %d, negative", s, r.bytesPerSecond)
		}
		var back rateFlag
		if err := back.Set(r.String()); err != nil || back != r {
			t.Fatalf("rate %q prints as %q, which reads back as %v, %v", s, r.String(), back, err)
		}
	})
}
