// Package gpuhealth keeps a vramseal worker's GPUs honest while it runs, for
// the CLI and embedders alike: it watches NVML health events and fail-stops
// the runtime on a critical XID or a double-bit ECC error (Watch.StartHealth),
// evicts a GPU's shards when other processes use it (Watch.StartContention),
// and decides readiness: every shard sealed and freshly verified, no GPU
// evicted or distrusted by NVML, nothing failed (Readiness).
//
// It acts on the runtime through the small Runtime interface, which
// *supervisor.Runtime satisfies, and reaches the GPUs through a Source, so
// tests can stand go-nvml's mocks (see cuda/nvmltest) in for the driver.
package gpuhealth
