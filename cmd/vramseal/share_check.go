package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/driver"
	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/share"
)

// shareCheckTimeout bounds "share check" as a whole: acquiring every shard
// verified means the server re-hashes each one first.
const shareCheckTimeout = 10 * time.Minute

// shareCheckBuffer is how much of a CUDA grant is copied out at a time.
const shareCheckBuffer = 16 << 20

func newShareCheckCommand(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:   "check --socket PATH [SHARD...]",
		Short: "Map every served shard as a client would, hash it and try to write to it",
		Long: `check is a second process for a "vramseal run --serve PATH": for each shard (all
of them, or the IDs given) it acquires a verified lease, maps the shard's memory
as docs/share-protocol.md says (a memfd with mmap; a cuda-vmm-fd through the CUDA
driver, imported read-only in the GPU's primary context), hashes its bytes and
compares them with the grant's SHA-256, and tries to write the byte it read back
through the mapping, which must be refused. It prints one line per shard:

  SHARD ok  SIZE HANDLE sha256 match; write refused: WHAT REFUSED IT
  SHARD FAIL  WHAT WENT WRONG (a digest MISMATCH, a write ACCEPTED, ...)

A memfd's write is tried with mprotect and write(2) on each shard. On a GPU a
refused write (cuMemcpyHtoD) can leave this process's CUDA context unusable, so
the cuda-vmm-fd shards are all hashed first ("write tried below"), and then one
write is tried, through the first of them, on a line of its own:

  SHARD ok  write through the read-only mapping refused: WHAT REFUSED IT

Exit codes: 0 every shard matched and refused the write; 1 no shard served, a
mismatch, an accepted write, or a shard that could not be acquired or mapped;
2 bad usage.`,
		Example: `  vramseal share check --socket /run/vramseal/share.sock
  vramseal share check --socket /run/vramseal/share.sock llama-00001`,
		RunE: func(cmd *cobra.Command, ids []string) error {
			if *socket == "" {
				return usageErrorf("share check needs --socket PATH, the path given to run --serve")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), shareCheckTimeout)
			defer cancel()
			c, err := share.Dial(ctx, *socket)
			if err != nil {
				return err
			}
			defer c.Close()
			if len(ids) == 0 {
				shards, err := c.Shards(ctx)
				if err != nil {
					return err
				}
				if len(shards) == 0 {
					return errors.New("share check: the worker serves no shard yet (run --serve serves each once it is sealed)")
				}
				for _, s := range shards {
					ids = append(ids, s.ID)
				}
			}
			failed, probe := 0, ""
			for _, id := range ids {
				line, handle, err := checkShard(ctx, c, id, false)
				if err != nil {
					failed++
					line = fmt.Sprintf("%s FAIL  %v", id, err)
				} else if handle == cuda.ShareCUDAVMM && probe == "" {
					probe = id
				}
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			if probe != "" {
				line, _, err := checkShard(ctx, c, probe, true)
				if err != nil {
					failed++
					line = fmt.Sprintf("%s FAIL  %v", probe, err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			if failed > 0 {
				return fmt.Errorf("share check: %d of %d shard(s) failed", failed, len(ids))
			}
			return nil
		},
	}
}

// checkShard acquires shard id verified and hashes it through its mapping.
// It tries to write through a memfd's mapping each time, and through a
// cuda-vmm-fd's only with cudaWrite, since a refused write may leave the
// process's CUDA context unusable. It returns the shard's line and its
// handle, or why it failed.
func checkShard(ctx context.Context, c *share.Client, id string, cudaWrite bool) (line string, handle cuda.ShareKind, err error) {
	lease, err := c.Acquire(ctx, id, true)
	if err != nil {
		return "", "", err
	}
	defer func() { err = errors.Join(err, lease.Release(ctx)) }()
	handle = cuda.ShareKind(lease.Handle)
	desc := fmt.Sprintf("%s %s", units.Bytes(lease.Size), lease.Handle)
	var sum []byte
	var refused error
	switch handle {
	case cuda.ShareMemfd:
		sum, refused, err = checkMemfd(lease)
	case cuda.ShareCUDAVMM:
		if cudaWrite {
			refused, err = tryCUDAWrite(lease)
			if err != nil {
				return "", handle, err
			}
			if refused == nil {
				return "", handle, errors.New("a write through the read-only cuda-vmm-fd mapping was ACCEPTED")
			}
			return fmt.Sprintf("%s ok  write through the read-only mapping refused: %v", id, refused), handle, nil
		}
		sum, err = hashCUDAVMM(lease)
	default:
		err = fmt.Errorf("a %q grant, which this check cannot map", lease.Handle)
	}
	if err != nil {
		return "", handle, err
	}
	got := hex.EncodeToString(sum)
	switch {
	case got != lease.Digest:
		return "", handle, fmt.Errorf("%s sha256 MISMATCH: read %s, the grant says %s", desc, got, lease.Digest)
	case handle == cuda.ShareCUDAVMM:
		return fmt.Sprintf("%s ok  %s sha256 match; write tried below", id, desc), handle, nil
	case refused == nil:
		return "", handle, fmt.Errorf("%s sha256 match; a write through the read-only mapping was ACCEPTED", desc)
	}
	return fmt.Sprintf("%s ok  %s sha256 match; write refused: %v", id, desc, refused), handle, nil
}

// checkMemfd hashes a memfd grant's mapping and tries to write the byte it
// holds back, with mprotect and with write(2).
func checkMemfd(lease *share.RemoteLease) (sum []byte, refused, err error) {
	b, err := lease.Map()
	if err != nil {
		return nil, nil, err
	}
	h := sha256.Sum256(b)
	f, err := lease.DupFile()
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	// mprotect needs the whole mapping, which Map does not give: map one
	// page of it again to try.
	page, err := unix.Mmap(int(f.Fd()), 0, unix.Getpagesize(), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map the descriptor again: %w", err)
	}
	defer unix.Munmap(page)
	errProtect := unix.Mprotect(page, unix.PROT_READ|unix.PROT_WRITE)
	var errWrite error
	if len(b) > 0 {
		// Through the descriptor opened again read-write, so that it is
		// the memfd's seal that refuses, not the read-only descriptor.
		errWrite = writeReopened(f, b[:1], lease.Offset)
	}
	if errProtect == nil || (len(b) > 0 && errWrite == nil) {
		return h[:], nil, nil
	}
	return h[:], fmt.Errorf("mprotect: %v; write(2): %v", errProtect, errWrite), nil
}

// writeReopened opens f again read-write through /proc/self/fd and writes p
// at off through it; it returns what refused the open or the write.
func writeReopened(f *os.File, p []byte, off int64) error {
	rw, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer rw.Close()
	_, err = rw.WriteAt(p, off)
	return err
}

// importCUDAVMM imports a cuda-vmm-fd grant read-only on its GPU.
func importCUDAVMM(lease *share.RemoteLease) (*driver.Mapping, error) {
	f, err := lease.DupFile()
	if err != nil {
		return nil, err
	}
	defer f.Close() // the mapping outlives it
	return driver.Import(lease.DeviceUUID, cuda.Shared{File: f, Kind: cuda.ShareCUDAVMM, MapSize: lease.MapSize, Offset: lease.Offset})
}

// hashCUDAVMM hashes a cuda-vmm-fd grant by copying it out of a read-only
// import.
func hashCUDAVMM(lease *share.RemoteLease) (sum []byte, err error) {
	m, err := importCUDAVMM(lease)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, m.Close()) }()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.NewSectionReader(m, lease.Offset, lease.Size), make([]byte, shareCheckBuffer)); err != nil {
		return nil, fmt.Errorf("copy the shard out of its mapping: %w", err)
	}
	return h.Sum(nil), nil
}

// tryCUDAWrite imports a cuda-vmm-fd grant read-only and tries to write the
// byte it holds back; it returns what refused the write. Once a write was
// refused, a failure to unmap (the context may be unusable after it) is
// part of that answer, not a failure of the check.
func tryCUDAWrite(lease *share.RemoteLease) (refused, err error) {
	if lease.Size == 0 {
		return nil, errors.New("an empty shard, through which no write can be tried")
	}
	m, err := importCUDAVMM(lease)
	if err != nil {
		return nil, err
	}
	first := make([]byte, 1)
	if _, err := m.ReadAt(first, lease.Offset); err != nil {
		return nil, errors.Join(err, m.Close())
	}
	_, refused = m.WriteAt(first, lease.Offset)
	if closeErr := m.Close(); closeErr != nil {
		if refused == nil {
			return nil, closeErr
		}
		refused = fmt.Errorf("%w (then unmapping: %v)", refused, closeErr)
	}
	return refused, nil
}
