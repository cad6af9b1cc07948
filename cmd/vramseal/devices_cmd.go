package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/gpuhealth"
	"github.com/vramseal/vramseal/internal/units"
)

// deviceJSON is one device as "vramseal devices --json" lists it.
type deviceJSON struct {
	Index             int    `json:"index"`
	Name              string `json:"name"`
	UUID              string `json:"uuid"`
	TotalMemoryBytes  int64  `json:"total_memory_bytes"`
	FreeMemoryBytes   int64  `json:"free_memory_bytes"`
	ComputeCapability string `json:"compute_capability"`
	Simulated         bool   `json:"simulated"`
}

func newDevicesCommand(a *app) *cobra.Command {
	var (
		backend backendFlags
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List the GPUs vramseal can use",
		Long: `devices lists each GPU's index, name, UUID, total and free memory and compute
capability, as NVML reports them. With --backend sim, or with auto (the
default) on a machine without the NVIDIA driver or GPUs, it lists the
simulated devices "vramseal run" would use there, after one line on stderr
saying why.

Exit codes: 0 devices listed; 1 --backend cuda and no NVIDIA driver found, or
the driver failed; 2 bad usage.`,
		Example: `  # The GPUs on this machine (simulated ones where it has none)
  vramseal devices

  # The simulated devices a run would get, as JSON
  vramseal devices --backend sim --sim-devices 4 --sim-vram 8GiB --json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := backend.validate(); err != nil {
				return err
			}
			list, err := listDevices(a, &backend)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			return printDevices(a.stdout, list)
		},
	}
	backend.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// listDevices lists the devices the backend flags choose, as a run would:
// with auto, the simulated ones when the machine has no NVIDIA GPU, and a
// line on stderr says why.
func listDevices(a *app, backend *backendFlags) ([]deviceJSON, error) {
	switch backend.kind.String() {
	case backendSim:
		return listSims(backend)
	case backendCUDA:
		return listGPUs(a.gpus)
	}
	reason, err := autoSimReason(a.gpus)
	if err != nil {
		return nil, err
	}
	if reason == "" {
		return listGPUs(a.gpus)
	}
	if _, err := fmt.Fprintf(a.stderr, "%s: these are the simulated devices \"vramseal run\" would use\n", reason); err != nil {
		return nil, err
	}
	return listSims(backend)
}

// listSims describes the simulated devices the flags ask for.
func listSims(f *backendFlags) ([]deviceJSON, error) {
	set, err := f.openSims("")
	if err != nil {
		return nil, err
	}
	defer set.Close()
	list := make([]deviceJSON, 0, len(set.Devices))
	for i, d := range set.Devices {
		free, total, err := d.MemInfo()
		if err != nil {
			return nil, err
		}
		p := d.Properties()
		list = append(list, deviceJSON{
			Index: i, Name: p.Name, UUID: p.UUID, TotalMemoryBytes: total, FreeMemoryBytes: free,
			ComputeCapability: fmt.Sprintf("%d.%d", p.ComputeMajor, p.ComputeMinor), Simulated: true,
		})
	}
	return list, nil
}

// listGPUs describes the real GPUs through NVML, in NVML's order.
func listGPUs(gpus gpuhealth.Source) ([]deviceJSON, error) {
	n, err := gpus.OpenNVML()
	if errors.Is(err, cuda.ErrNoDriver) {
		return nil, fmt.Errorf("--backend cuda: %w; install the NVIDIA driver, or list simulated devices with --backend sim", err)
	}
	if err != nil {
		return nil, err
	}
	infos, err := n.Devices()
	err = errors.Join(err, n.Close())
	if err != nil {
		return nil, err
	}
	list := make([]deviceJSON, 0, len(infos))
	for _, g := range infos {
		list = append(list, deviceJSON{
			Index: g.Index, Name: g.Name, UUID: g.UUID, TotalMemoryBytes: g.TotalMemory, FreeMemoryBytes: g.FreeMemory,
			ComputeCapability: fmt.Sprintf("%d.%d", g.ComputeMajor, g.ComputeMinor),
		})
	}
	return list, nil
}

// printDevices writes list as an aligned table.
func printDevices(w io.Writer, list []deviceJSON) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no GPUs found")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tNAME\tUUID\tTOTAL\tFREE\tCOMPUTE")
	for _, d := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Index, d.Name, d.UUID,
			units.Bytes(d.TotalMemoryBytes), units.Bytes(d.FreeMemoryBytes), d.ComputeCapability)
	}
	return tw.Flush()
}
