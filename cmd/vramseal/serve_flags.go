package main

import (
	"github.com/spf13/pflag"

	"github.com/vramseal/vramseal/share"
)

// serveOptions are run's lease server flags.
type serveOptions struct {
	path       string
	allowUIDs  []int
	allowGIDs  []int
	maxClients int
}

// register adds --serve and the flags that shape it.
func (o *serveOptions) register(f *pflag.FlagSet) {
	f.StringVar(&o.path, "serve", "", "serve the sealed shards to other processes on this Unix socket path (memfds on simulated GPUs, CUDA VMM descriptors on real ones): zero-copy, read-only mappings; docs/share-protocol.md")
	f.IntSliceVar(&o.allowUIDs, "serve-allow-uid", nil, "user IDs that may connect to --serve besides this worker's own and root (comma-separated or repeated)")
	f.IntSliceVar(&o.allowGIDs, "serve-allow-gid", nil, "primary group IDs that may connect to --serve (comma-separated or repeated)")
	f.IntVar(&o.maxClients, "serve-max-clients", share.DefaultMaxClients, "most connections --serve holds at once; one more is refused")
}

// validate checks the flags with no devices at hand.
func (o *serveOptions) validate() error {
	switch {
	case o.path == "" && (len(o.allowUIDs) > 0 || len(o.allowGIDs) > 0):
		return usageErrorf("--serve-allow-uid and --serve-allow-gid need --serve PATH")
	case o.maxClients < 1:
		return usageErrorf("--serve-max-clients %d: need at least 1", o.maxClients)
	}
	return nil
}
