// Package driver is vramseal's backend for real NVIDIA GPUs: a cuda.Device
// driven through the CUDA driver API, with libcuda.so.1 loaded by dlopen at
// run time (so programs build and start on machines without a GPU, where
// Open fails with cuda.ErrNoDriver), and the SHA-256 kernel (kernel/) that
// hashes sealed chunks where the weights live. Opened WithShareable, a
// Device makes CUDA virtual memory allocations that it shares with other
// processes as POSIX descriptors (cuda.Sharer, kind cuda-vmm-fd), and Import
// maps such a descriptor read-only in another process. It needs cgo;
// embedders that run only on cuda.Sim do not import it.
package driver
