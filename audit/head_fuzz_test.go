package audit

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseHeadLine feeds the head parser anything: it must never panic,
// every refusal wraps ErrBadHead, and a head it accepts has a seq from 1
// and a mac of 64 lower-case hex digits that SEQ:MAC reads back the same.
func FuzzParseHeadLine(f *testing.F) {
	mac := strings.Repeat("9f", 32)
	f.Add("7:" + mac)
	f.Add(`{"time":"2026-01-02T03:04:05Z","level":"INFO","msg":"audit head","worker_id":"w1","seq":7,"mac":"` + mac + `"}`)
	f.Add(`{"worker_id":"w1","seq":"7","mac":"` + mac + `","time":"2026-01-02T03:04:05Z"}`)
	f.Add(`time=2026 level=INFO msg="audit head" worker_id="a \"b\"" seq=7 mac=` + mac + ` record_time=2026`)
	f.Add(`Dec 07 07:00:00 gpu1 vramseal[42]: msg="audit head" seq=18446744073709551615 mac=` + mac)
	f.Add(`msg="audit head" seq=0 mac=`)
	f.Add("18446744073709551616:" + mac)
	f.Add(`{"msg":null,"seq":1e3,"mac":"` + mac + `"}`)
	f.Add(`msg="\x" seq=1`)
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		h, err := ParseHeadLine(line)
		if err != nil {
			if !errors.Is(err, ErrBadHead) {
				t.Fatalf("%q: error %v does not wrap ErrBadHead", line, err)
			}
			return
		}
		if h.Seq == 0 {
			t.Fatalf("%q: accepted seq 0", line)
		}
		if b, err := hex.DecodeString(h.MAC); err != nil || len(b) != 32 || strings.ToLower(h.MAC) != h.MAC {
			t.Fatalf("%q: accepted mac %q", line, h.MAC)
		}
		back, err := ParseHead(strconv.FormatUint(h.Seq, 10) + ":" + h.MAC)
		if err != nil || back.Seq != h.Seq || back.MAC != h.MAC {
			t.Fatalf("%q: SEQ:MAC of %+v reads back as %+v, %v", line, h, back, err)
		}
	})
}
