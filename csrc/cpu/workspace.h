// What dispatch.cpp hands to the per-ISA kernels besides the arguments: memory it owns (so the
// kernels, compiled with ISA flags, never instantiate allocation code) and the thread count.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "../fastloss/kernels.h"

namespace fastloss {

// Ctrl-C: the flag a caller asked this thread's kernel calls to watch (nullptr: none). The kernels
// skip their remaining chunks once it is set (parallel_chunks), leaving the outputs partly written;
// the caller, which owns the flag, then raises. Per calling thread, so an interrupt of one call
// never cuts short a concurrent call of another thread.
void set_call_interrupt(const std::atomic<int>* flag);
const std::atomic<int>* call_interrupt();

struct Workspace {
  char* scratch;           // threads * scratch_per_thread bytes, 64-byte aligned slices
  size_t scratch_per_thread;
  double* partials;        // one per work chunk: loss sums combined in chunk order
  int threads;
  const void* weights;     // rowwise: (classes,) in the math type; ones when the loss has none
  double weight_sum;       // sum of weights (cross_entropy label smoothing)
  int* target_invalid;     // pointwise: set to 1 by a kernel that met a target outside the domain
};

// The work layout of one call: the same for every thread count, so reductions are deterministic.
struct WorkPlan {
  int64_t chunks;
  size_t scratch_per_thread;
};

// One instruction set's kernels (defined in isa_kernels.cpp, compiled once per ISA).
struct IsaKernels {
  const char* name;
  WorkPlan (*rowwise_plan)(const FlRowwiseArgs&);
  double (*rowwise)(const FlRowwiseArgs&, const Workspace&);
  WorkPlan (*pointwise_plan)(const FlPointwiseArgs&);
  double (*pointwise)(const FlPointwiseArgs&, const Workspace&);
  // Test hook: out[i] = f(a[i], b[i], c[i]) with the ISA's vector math (f: vector_math_hook.h),
  // dtype FL_FLOAT32 or FL_FLOAT64; b, c may be null.
  void (*vector_math)(int f, int dtype, const void* a, const void* b, const void* c, void* out, int64_t n);
};

}  // namespace fastloss

#define FL_DECLARE_ISA(isa) extern "C" const fastloss::IsaKernels fastloss_cpu_kernels_##isa;
