package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/safefile"
)

// maxHeadsFileBytes bounds a --heads file: a head a minute for ten years
// is far less.
const maxHeadsFileBytes = 1 << 30

// shippedHead is a head given to "audit verify", and where it was given,
// for messages.
type shippedHead struct {
	head  audit.Head
	where string // "--expect-head 7:..." or "heads.txt line 3"
}

// expectedHeads reads the heads of --expect-head and --heads. Every error
// is a usage error naming the value or the line.
func expectedHeads(values []string, file string) ([]shippedHead, error) {
	var heads []shippedHead
	for _, v := range values {
		h, err := audit.ParseHead(v)
		if err != nil {
			return nil, usageErrorf("--expect-head %v; give a head as the worker published it, e.g. --expect-head 12:%s", err, strings.Repeat("0", 64))
		}
		heads = append(heads, shippedHead{head: h, where: "--expect-head " + v})
	}
	if file == "" {
		return heads, nil
	}
	fromFile, err := readHeadsFile(file)
	if err != nil {
		return nil, err
	}
	return append(heads, fromFile...), nil
}

// readHeadsFile reads a --heads file: one head a line, blank lines
// skipped.
func readHeadsFile(path string) ([]shippedHead, error) {
	f, _, err := safefile.Open(path, safefile.Options{})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageErrorf("--heads %s does not exist; pass a file of the worker's \"audit head\" log lines", path)
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, usageErrorf("--heads %s is not a regular file; save the heads to a file first", path)
	case err != nil:
		return nil, usageErrorf("--heads %s cannot be read: %v", path, safefile.Cause(err))
	}
	defer f.Close()
	var heads []shippedHead
	sc := bufio.NewScanner(io.LimitReader(f, maxHeadsFileBytes))
	sc.Buffer(make([]byte, 0, 4096), audit.MaxLineBytes)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		h, err := audit.ParseHeadLine(sc.Text())
		if err != nil {
			return nil, usageErrorf("--heads %s, line %d: %v; each line must be a head: the worker's \"audit head\" log line, a GET /audit/head answer, or SEQ:MAC (grep 'audit head' picks those lines out of a log)", path, n, err)
		}
		heads = append(heads, shippedHead{head: h, where: fmt.Sprintf("%s line %d", path, n)})
	}
	if err := sc.Err(); err != nil {
		return nil, usageErrorf("--heads %s cannot be read: %v", path, err)
	}
	if len(heads) == 0 {
		return nil, usageErrorf("--heads %s holds no head; pass the worker's \"audit head\" log lines", path)
	}
	return heads, nil
}

// headsOfWorker refuses a head that names another worker than the log's.
func headsOfWorker(heads []shippedHead, workerID string) error {
	for _, h := range heads {
		if h.head.WorkerID != "" && h.head.WorkerID != workerID {
			return usageErrorf("%s is a head of worker %q, and this log is worker %q's; pass the heads this worker published (or --worker-id)", h.where, h.head.WorkerID, workerID)
		}
	}
	return nil
}

// headsOnly are the heads without where they were given.
func headsOnly(heads []shippedHead) []audit.Head {
	out := make([]audit.Head, len(heads))
	for i, h := range heads {
		out[i] = h.head
	}
	return out
}

// lastHeld names the last head a log still holds, for the mismatch message.
func lastHeld(r audit.HeadReport) string {
	if r.LastMatched == nil {
		return "it holds none of the heads given"
	}
	return fmt.Sprintf("the last head it holds is seq %d (%s)", r.LastMatched.Seq, r.LastMatched.MAC)
}
