//go:build !linux

package audit

import "os"

// newSyncFile is the log's file as it is: only Linux hands fsyncs to the
// kernel (see fsync_linux.go).
func newSyncFile(f *os.File, _ func() bool) logFile { return f }
