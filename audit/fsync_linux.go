package audit

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Keeping fsync off the callers' Ps.
//
// A goroutine blocked in fsync(2) keeps its P (one of GOMAXPROCS) until
// sysmon notices, late or not at all on a busy machine (see pace.go), so
// while the log's writer waits for the disk, callers that have work wait
// for a CPU. So while goroutines wait for a P, the log's file does not
// call fsync(2) itself: it hands the fsync to the kernel as a Linux AIO
// request (IOCB_CMD_FSYNC, which the kernel runs on its own worker thread,
// with fsync's meaning and errors) and parks on a Go timer, looking for
// the completion each time it wakes (first after a quarter of its usual
// fsync time, then every aioPollStep); a timer, not the netpoller, because
// a saturated scheduler checks its timers at every turn and its netpoller
// only when a P runs out of work. The writer returns, and its callers are
// answered, only once the kernel says the fsync is done: nothing is
// acknowledged earlier than before. On an idle CPU, or where the kernel
// offers no AIO, Sync is a plain fsync(2): a P that nobody wants costs
// nothing, and a timer would only add latency (an idle Go sleeps in
// whole milliseconds).

// aioFile is the log's file, its Sync as described above. Only the writer
// goroutine calls Sync; Close only after it has stopped.
type aioFile struct {
	*os.File
	ctx  aioContext // 0 where io_setup failed: every Sync is fsync(2)
	busy func() bool
	iocb iocb
	ev   ioEvent
	// syncTime is a moving average of the fsyncs handed to the kernel,
	// for how long to sleep before the first look.
	syncTime time.Duration
}

// aioContext is a kernel AIO context (aio_context_t).
type aioContext uintptr

// iocb is the kernel's struct iocb (linux/aio_abi.h), 64 bytes, for a
// little-endian host; big-endian ones swap aio_key and aio_rw_flags, both
// zero here.
// Only the opcode and the descriptor are set; the other fields keep the
// layout and stay zero.
type iocb struct {
	_      uint64 // aio_data
	_      uint32 // aio_key
	_      int32  // aio_rw_flags
	opcode uint16 // aio_lio_opcode
	_      int16  // aio_reqprio
	fildes uint32 // aio_fildes
	_      uint64 // aio_buf
	_      uint64 // aio_nbytes
	_      int64  // aio_offset
	_      uint64 // aio_reserved2
	_      uint32 // aio_flags
	_      uint32 // aio_resfd
}

// ioEvent is the kernel's struct io_event.
type ioEvent struct {
	data, obj uint64
	res, res2 int64
}

// iocbCmdFsync is IOCB_CMD_FSYNC.
const iocbCmdFsync = 2

// Polling for a completion: the first look after a quarter of the usual
// fsync time (aioFirstLook before any), then every aioPollStep.
const (
	aioFirstLook = 50 * time.Microsecond // before any fsync has been timed
	aioPollStep  = 20 * time.Microsecond
)

// newSyncFile wraps the log's file; busy says whether goroutines wait for
// a P.
func newSyncFile(f *os.File, busy func() bool) logFile {
	a := &aioFile{File: f, busy: busy}
	if _, _, errno := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&a.ctx)), 0); errno != 0 {
		a.ctx = 0
	}
	return a
}

// Sync makes the file's data durable, as fsync(2) does, returning only
// once it is.
func (a *aioFile) Sync() error {
	if a.ctx == 0 || !a.busy() {
		return a.File.Sync()
	}
	a.iocb = iocb{opcode: iocbCmdFsync, fildes: uint32(a.File.Fd())}
	p := &a.iocb
	if n, _, errno := unix.Syscall(unix.SYS_IO_SUBMIT, uintptr(a.ctx), 1, uintptr(unsafe.Pointer(&p))); errno != 0 || n != 1 {
		return a.File.Sync() // nothing was submitted
	}
	start := time.Now()
	wait := aioFirstLook
	if a.syncTime > 0 {
		wait = max(a.syncTime/4, aioPollStep)
	}
	for {
		time.Sleep(wait)
		done, err := a.reap()
		if err != nil {
			return err
		}
		if done {
			break
		}
		wait = aioPollStep
	}
	runtime.KeepAlive(p)
	d := time.Since(start)
	if a.syncTime == 0 {
		a.syncTime = d
	} else {
		a.syncTime += (d - a.syncTime) / 8
	}
	if a.ev.res < 0 {
		return &os.PathError{Op: "fsync", Path: a.File.Name(), Err: unix.Errno(-a.ev.res)}
	}
	return nil
}

// reap looks, without waiting, whether the fsync in flight is done. An
// error means the kernel would not say, and the fsync may still be in
// flight; the log fails on it, so nothing is acknowledged.
func (a *aioFile) reap() (bool, error) {
	var zero unix.Timespec
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_GETEVENTS, uintptr(a.ctx), 1, 1,
			uintptr(unsafe.Pointer(&a.ev)), uintptr(unsafe.Pointer(&zero)), 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			return false, fmt.Errorf("fsync: wait for completion: %w", errno)
		}
		return n == 1, nil
	}
}

// Close releases the AIO context, waiting for nothing (no fsync is in
// flight once the writer has stopped), and closes the file.
func (a *aioFile) Close() error {
	var err error
	if a.ctx != 0 {
		if _, _, errno := unix.Syscall(unix.SYS_IO_DESTROY, uintptr(a.ctx), 0, 0); errno != 0 {
			err = fmt.Errorf("io_destroy: %w", errno)
		}
		a.ctx = 0
	}
	return errors.Join(err, a.File.Close())
}
