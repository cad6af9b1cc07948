/*
 * sha256.c is vramseal's SHA-256 kernel: one GPU thread hashes one chunk of
 * device memory and writes its plain SHA-256 (FIPS 180-4), so the digests
 * equal those the host computes at seal time.
 *
 * One source, two builds:
 *   - clang compiles it as CUDA for nvptx64 (build_ptx.sh), giving
 *     sha256.ptx, which package cuda embeds and loads with cuModuleLoadData;
 *   - a C compiler builds it for the host: cgo in package kernel, whose tests
 *     compare it with crypto/sha256, and the stand-in libcuda in
 *     ../testdata, whose cuLaunchKernel runs the kernel thread by thread.
 * It includes no header, so the CUDA build needs no CUDA toolkit.
 */

#ifdef __CUDA__
#define VS_DEVICE static inline __attribute__((device, always_inline))
#define VS_CONSTANT static __attribute__((constant)) const
#define VS_KERNEL extern "C" __attribute__((global))
#define VS_UNROLL _Pragma("unroll")
/* Chunks are only read: load them through the read-only data cache. */
#define VS_LOAD32(q) __nvvm_ldg_ui(q)
#define VS_BLOCK_INDEX() ((unsigned long long)__nvvm_read_ptx_sreg_ctaid_x())
#define VS_BLOCK_THREADS() ((unsigned long long)__nvvm_read_ptx_sreg_ntid_x())
#define VS_THREAD_INDEX() ((unsigned long long)__nvvm_read_ptx_sreg_tid_x())
#else
#define VS_DEVICE static inline __attribute__((always_inline))
#define VS_CONSTANT static const
#define VS_KERNEL static
#define VS_UNROLL
#define VS_LOAD32(q) (*(q))
/* On the host, the launcher sets the built-in indices before each thread. */
static _Thread_local unsigned long long vs_host_block_index, vs_host_block_threads, vs_host_thread_index;
#define VS_BLOCK_INDEX() (vs_host_block_index)
#define VS_BLOCK_THREADS() (vs_host_block_threads)
#define VS_THREAD_INDEX() (vs_host_thread_index)
#endif

#define VS_SHA256_SIZE 32

VS_CONSTANT unsigned int vs_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

VS_DEVICE unsigned int vs_rotr(unsigned int x, int n) { return (x >> n) | (x << (32 - n)); }

/* vs_compress folds one 64-byte block, as 16 big-endian words, into h. */
VS_DEVICE void vs_compress(unsigned int h[8], unsigned int w[16]) {
	unsigned int a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	VS_UNROLL
	for (int i = 0; i < 64; i++) {
		if (i >= 16) {
			unsigned int w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
			unsigned int s0 = vs_rotr(w15, 7) ^ vs_rotr(w15, 18) ^ (w15 >> 3);
			unsigned int s1 = vs_rotr(w2, 17) ^ vs_rotr(w2, 19) ^ (w2 >> 10);
			w[i & 15] += s0 + w[(i - 7) & 15] + s1;
		}
		unsigned int t1 = hh + (vs_rotr(e, 6) ^ vs_rotr(e, 11) ^ vs_rotr(e, 25)) + ((e & f) ^ (~e & g)) + vs_k[i] + w[i & 15];
		unsigned int t2 = (vs_rotr(a, 2) ^ vs_rotr(a, 13) ^ vs_rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	h[5] += f;
	h[6] += g;
	h[7] += hh;
}

/* vs_load_block reads 64 bytes at p as 16 big-endian words: with 32-bit
 * loads when p is 4-byte aligned, byte by byte otherwise. */
VS_DEVICE void vs_load_block(const unsigned char *p, unsigned int w[16]) {
	if (((unsigned long long)p & 3) == 0) {
		const unsigned int *q = (const unsigned int *)p;
		VS_UNROLL
		for (int i = 0; i < 16; i++) {
			w[i] = __builtin_bswap32(VS_LOAD32(q + i));
		}
		return;
	}
	VS_UNROLL
	for (int i = 0; i < 16; i++) {
		w[i] = (unsigned int)p[4 * i] << 24 | (unsigned int)p[4 * i + 1] << 16 |
		       (unsigned int)p[4 * i + 2] << 8 | (unsigned int)p[4 * i + 3];
	}
}

/* vs_sha256 writes the SHA-256 of the n bytes at p to out. */
VS_DEVICE void vs_sha256(const unsigned char *p, unsigned long long n, unsigned char *out) {
	unsigned int h[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	unsigned int w[16];
	unsigned long long off = 0;
	for (; n - off >= 64; off += 64) {
		vs_load_block(p + off, w);
		vs_compress(h, w);
	}
	/* The tail, the 0x80 marker and the bit length fill one block, or two
	 * when fewer than 9 bytes are left after the tail. */
	unsigned long long tail = n - off;
	int blocks = tail < 56 ? 1 : 2;
	unsigned long long bits = n * 8;
	for (int b = 0; b < blocks; b++) {
		VS_UNROLL
		for (int i = 0; i < 16; i++) {
			unsigned int word = 0;
			VS_UNROLL
			for (int j = 0; j < 4; j++) {
				unsigned long long at = (unsigned long long)(64 * b + 4 * i + j);
				unsigned int byte = 0;
				if (at < tail) {
					byte = p[off + at];
				} else if (at == tail) {
					byte = 0x80;
				} else if (b == blocks - 1 && i >= 14) {
					byte = (unsigned int)(bits >> (8 * (7 - (4 * (i - 14) + j)))) & 0xff;
				}
				word = word << 8 | byte;
			}
			w[i] = word;
		}
		vs_compress(h, w);
	}
	VS_UNROLL
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (unsigned char)(h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(h[i] >> 8);
		out[4 * i + 3] = (unsigned char)h[i];
	}
}

/*
 * vs_span is one span of device memory the kernel hashes: length bytes at
 * address data in chunks of chunk_size bytes, the last one short, whose
 * digests are numbered from first across all spans of a launch. Spans are
 * in order of first and none is empty, so span i holds chunks
 * [first_i, first_i+1).
 */
struct vs_span {
	unsigned long long data, length, chunk_size, first;
};

/*
 * vs_sha256_spans is the kernel. Thread t of the grid (block index times
 * threads per block, plus thread index) hashes chunk t of all spans
 * together and writes its digest to digests + 32 t. Threads past the last
 * chunk do nothing, so any grid of at least as many threads as chunks is
 * right. One launch may hash chunks of many allocations, so that a scrub
 * of many shards gives the GPU one thread per chunk of them all.
 */
VS_KERNEL void vs_sha256_spans(const struct vs_span *__restrict__ spans, unsigned long long span_count,
                               unsigned long long chunks, unsigned char *__restrict__ digests) {
	unsigned long long t = VS_BLOCK_INDEX() * VS_BLOCK_THREADS() + VS_THREAD_INDEX();
	if (t >= chunks || span_count == 0) {
		return;
	}
	/* The last span whose first chunk is at most t. */
	unsigned long long lo = 0, hi = span_count - 1;
	while (lo < hi) {
		unsigned long long mid = lo + (hi - lo + 1) / 2;
		if (spans[mid].first <= t) {
			lo = mid;
		} else {
			hi = mid - 1;
		}
	}
	const struct vs_span s = spans[lo];
	unsigned long long start = (t - s.first) * s.chunk_size;
	if (s.chunk_size == 0 || start >= s.length) {
		return;
	}
	unsigned long long n = s.length - start < s.chunk_size ? s.length - start : s.chunk_size;
	vs_sha256((const unsigned char *)s.data + start, n, digests + VS_SHA256_SIZE * t);
}

#ifndef __CUDA__
/*
 * vs_sha256_spans_host runs the kernel on the host as a grid of blocks
 * blocks of threads threads runs it on a GPU, one thread after another, so
 * the host build exercises the same indexing as the device.
 */
void vs_sha256_spans_host(unsigned int blocks, unsigned int threads, const struct vs_span *spans,
                          unsigned long long span_count, unsigned long long chunks, unsigned char *digests) {
	vs_host_block_threads = threads;
	for (unsigned int b = 0; b < blocks; b++) {
		vs_host_block_index = b;
		for (unsigned int t = 0; t < threads; t++) {
			vs_host_thread_index = t;
			vs_sha256_spans(spans, span_count, chunks, digests);
		}
	}
}

/* vs_sha256_host writes the SHA-256 of the n bytes at p, as one thread of
 * the kernel computes a chunk's, to out. */
void vs_sha256_host(const unsigned char *p, unsigned long long n, unsigned char *out) {
	vs_sha256(p, n, out);
}
#endif
