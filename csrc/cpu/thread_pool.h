// The threads of a FASTLOSS_PORTABLE build (the wheels built on a new glibc), which has no OpenMP:
// the only OpenMP runtime here is libgomp.so, which needs glibc 2.34, and its static archive is not
// position-independent. Baseline flags, outside the per-ISA namespaces (thread_pool.cpp).
#pragma once

#include <stdint.h>

namespace fastloss {

// fn(ctx, chunk, thread) for every chunk in [0, chunks), handed out one at a time to `threads`
// threads (the caller is thread 0; workers are 1 .. threads-1), returning when all are done.
// A call made while another is running (two Python threads) runs its chunks on the caller alone.
using ChunkFn = void (*)(void* ctx, int64_t chunk, int thread);
void pool_run(int64_t chunks, int threads, ChunkFn fn, void* ctx);

}  // namespace fastloss
