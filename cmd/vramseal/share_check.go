package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
compares them with the grant's SHA-256, then tries to write the byte it read back
through the mapping (a memfd: mprotect and write(2); CUDA: cuMemcpyHtoD), which
must be refused. It prints one line per shard:

  SHARD ok  SIZE HANDLE sha256 match; write refused: WHAT REFUSED IT
  SHARD FAIL  WHAT WENT WRONG (a digest MISMATCH, a write ACCEPTED, ...)

On a GPU a refused write can leave this process's CUDA context unusable, so each
shard's write is tried last, and a later shard may then fail to import: check
one shard at a time to see each.

Exit codes: 0 every shard matched and refused the write; 1 a mismatch, an
accepted write, or a shard that could not be acquired or mapped; 2 bad usage.`,
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
				for _, s := range shards {
					ids = append(ids, s.ID)
				}
			}
			failed := 0
			for _, id := range ids {
				line, err := checkShard(ctx, c, id)
				if err != nil {
					failed++
					line = fmt.Sprintf("%s FAIL  %v", id, err)
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

// checkShard acquires shard id verified, hashes it through its mapping and
// tries to write through it; it returns the shard's line, or why it failed.
func checkShard(ctx context.Context, c *share.Client, id string) (line string, err error) {
	lease, err := c.Acquire(ctx, id, true)
	if err != nil {
		return "", err
	}
	defer func() { err = errors.Join(err, lease.Release(ctx)) }()
	var sum []byte
	var refused error
	switch lease.Handle {
	case string(cuda.ShareMemfd):
		sum, refused, err = checkMemfd(lease)
	case string(cuda.ShareCUDAVMM):
		sum, refused, err = checkCUDAVMM(lease)
	default:
		err = fmt.Errorf("a %q grant, which this check cannot map", lease.Handle)
	}
	if err != nil {
		return "", err
	}
	got := hex.EncodeToString(sum)
	desc := fmt.Sprintf("%s %s", units.Bytes(lease.Size), lease.Handle)
	switch {
	case got != lease.Digest:
		return "", fmt.Errorf("%s sha256 MISMATCH: read %s, the grant says %s", desc, got, lease.Digest)
	case refused == nil:
		return "", fmt.Errorf("%s sha256 match; a write through the read-only mapping was ACCEPTED", desc)
	}
	return fmt.Sprintf("%s ok  %s sha256 match; write refused: %v", id, desc, refused), nil
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
		_, errWrite = unix.Pwrite(int(f.Fd()), b[:1], lease.Offset)
	}
	if errProtect == nil || (len(b) > 0 && errWrite == nil) {
		return h[:], nil, nil
	}
	return h[:], fmt.Errorf("mprotect: %v; write(2): %v", errProtect, errWrite), nil
}

// checkCUDAVMM imports a cuda-vmm-fd grant read-only on its GPU, hashes it
// by copying it out, then tries to write the byte it holds back.
func checkCUDAVMM(lease *share.RemoteLease) (sum []byte, refused, err error) {
	f, err := lease.DupFile()
	if err != nil {
		return nil, nil, err
	}
	m, err := driver.Import(lease.DeviceUUID, cuda.Shared{File: f, Kind: cuda.ShareCUDAVMM, MapSize: lease.MapSize, Offset: lease.Offset})
	f.Close() // the mapping outlives it
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, m.Close()) }()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.NewSectionReader(m, lease.Offset, lease.Size), make([]byte, shareCheckBuffer)); err != nil {
		return nil, nil, fmt.Errorf("copy the shard out of its mapping: %w", err)
	}
	first := make([]byte, 1)
	if lease.Size > 0 {
		if _, err := m.ReadAt(first, lease.Offset); err != nil {
			return nil, nil, err
		}
		_, refused = m.WriteAt(first, lease.Offset)
	}
	return h.Sum(nil), refused, nil
}
