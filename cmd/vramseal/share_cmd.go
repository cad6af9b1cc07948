package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/share"
)

// shareDialTimeout bounds how long "share list" waits for the server.
const shareDialTimeout = 10 * time.Second

func newShareCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "share",
		Short: "Look at a running worker's lease server (run --serve)",
		Args:  cobra.NoArgs,
	}
	var socket string
	list := &cobra.Command{
		Use:   "list --socket PATH",
		Short: "List the shards a worker serves and the clients holding leases",
		Long: `list connects to the lease server of a "vramseal run --serve PATH" and prints the
shards it serves (ID, device, size, SHA-256) and every connected client (pid,
uid, gid, the leases it holds). Your user must be one the server admits: the
worker's own, root, or one of --serve-allow-uid / --serve-allow-gid.

Exit codes: 0 listed; 1 the server could not be reached or refused; 2 bad usage.`,
		Example: `  vramseal share list --socket /run/vramseal/share.sock`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if socket == "" {
				return usageErrorf("share list needs --socket PATH, the path given to run --serve")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), shareDialTimeout)
			defer cancel()
			c, err := share.Dial(ctx, socket)
			if err != nil {
				return err
			}
			defer c.Close()
			shards, clients, err := c.Status(ctx)
			if err != nil {
				return err
			}
			return writeShareStatus(a.stdout, shards, clients, c.Worker())
		},
	}
	list.Flags().StringVar(&socket, "socket", "", "the lease server's Unix socket (run --serve PATH)")
	check := newShareCheckCommand(&socket)
	check.Flags().StringVar(&socket, "socket", "", "the lease server's Unix socket (run --serve PATH)")
	cmd.AddCommand(list, check)
	return cmd
}

// writeShareStatus prints a lease server's shards and clients for people.
func writeShareStatus(w io.Writer, shards []share.ShardInfo, clients []share.ClientInfo, worker string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "worker %s serves %d shard(s)\n", worker, len(shards))
	fmt.Fprintln(tw, "SHARD\tDEVICE\tSIZE\tSHA-256")
	for _, s := range shards {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.ID, s.Device, units.Bytes(s.Size), s.Digest)
	}
	fmt.Fprintf(tw, "\n%d client(s) connected\n", len(clients))
	fmt.Fprintln(tw, "PID\tUID\tGID\tLEASES")
	slices.SortFunc(clients, func(x, y share.ClientInfo) int { return x.PID - y.PID })
	for _, c := range clients {
		ids := make([]string, len(c.Leases))
		for i, l := range c.Leases {
			ids[i] = fmt.Sprint(l)
		}
		leases := strings.Join(ids, ",")
		if leases == "" {
			leases = "-"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\n", c.PID, c.UID, c.GID, leases)
	}
	return tw.Flush()
}
