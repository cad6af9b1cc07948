package audit

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// FuzzParseLine feeds the line parser anything: it must never panic, and a
// line it accepts must be exactly its body and mac put back together.
func FuzzParseLine(f *testing.F) {
	for _, line := range buildLines(f, testKey(f, "w1"), 2) {
		f.Add(line[:len(line)-1])
	}
	f.Add([]byte(`{"seq":1,"mac":"` + string(bytes.Repeat([]byte("0"), macHexLen)) + `"}`))
	f.Add([]byte(`,"mac":"` + string(bytes.Repeat([]byte("A"), macHexLen)) + `"}`))
	f.Add([]byte(`{"seq":-1,"worker_id":7` + macPrefix + string(bytes.Repeat([]byte("f"), macHexLen)) + `"}`))
	f.Add([]byte("{}"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, line []byte) {
		in := bytes.Clone(line)
		p, err := parseLine(line)
		if !bytes.Equal(in, line) {
			t.Fatalf("parseLine changed its input")
		}
		if err != nil {
			return
		}
		if !p.hasMAC {
			t.Fatalf("accepted %q without a mac", line)
		}
		back := append(bytes.Clone(p.body[:len(p.body)-1]), macPrefix+hex.EncodeToString(p.mac[:])+`"}`...)
		if !bytes.EqualFold(back, line) {
			t.Fatalf("accepted %q, but body and mac make %q", line, back)
		}
	})
}
