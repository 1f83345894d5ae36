// The CUDA execution model on the host, for the test build only (FASTLOSS_CUDA_EMULATOR=ON): what
// lets csrc/cuda/*.cu compile with a C++17 compiler and run on the CPU. See README.md here.
//
// A launch runs its blocks one after another (in a seeded shuffled order) on the calling thread;
// the threads of a block (of a thread-block cluster: all its blocks) are fibers with stacks of
// their own, switched only at __syncthreads(), warp collectives and cluster barriers, in a seeded
// shuffled order. Everything that a GPU leaves undefined and our kernels must not do fails the
// launch with a message naming the thread and the source line (cudaErrorLaunchFailure; the
// message is cudaGetErrorString's): divergent barriers, a thread leaving while others wait, warp
// collectives whose mask omits the calling lane or names an exited lane, lanes disagreeing on the
// mask or the call site, reads from a lane outside the mask, shared memory read before it is
// written (it starts as NaN bytes 0xFF), __trap().
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#ifndef FASTLOSS_CUDA_EMULATOR
#error "the CUDA emulator headers are for builds with -DFASTLOSS_CUDA_EMULATOR (CMake: FASTLOSS_CUDA_EMULATOR=ON)"
#endif

// ---- keywords ------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
};

namespace fl_emu {

struct Site {
  const char* file;
  int line;
};

void syncthreads(Site site);
void threadfence();
[[noreturn]] void trap(Site site);

enum class Collective : int { kSyncwarp, kBallot, kShflIdx, kShflUp, kShflDown, kShflXor };
// One warp collective: every lane of `mask` (the caller included) must reach it at the same site;
// returns the value read from the source lane (shuffles), the ballot, or 0 (__syncwarp).
std::uint64_t warp_collective(Site site, Collective kind, unsigned mask, std::uint64_t value, int b, int width);

template <class T> T shuffle(Site site, Collective kind, unsigned mask, T v, int b, int width) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffles move up to 8 bytes");
  std::uint64_t raw = 0;
  std::memcpy(&raw, &v, sizeof(T));
  raw = warp_collective(site, kind, mask, raw, b, width);
  T r;
  std::memcpy(&r, &raw, sizeof(T));
  return r;
}

// Shared memory of the running block: a static __shared__ declaration (one per `key`, the
// address of a function-local static of the declaring code) and the dynamic shared memory.
void* block_static(const void* key, std::size_t bytes, std::size_t align);
void* dynamic_shared();
template <class T> T* shared_array(const void* key, std::size_t n) {
  static_assert(std::is_trivially_default_constructible<T>::value, "shared memory holds trivial types");
  return static_cast<T*>(block_static(key, sizeof(T) * n, alignof(T)));
}

// Thread-block clusters (cooperative_groups::this_cluster()).
unsigned cluster_rank();
unsigned cluster_size();
void cluster_sync(Site site);
void* map_shared_rank(void* p, unsigned rank);

// Launches: `body(ctx)` runs once per thread of every block.
struct LaunchSpec {
  const void* kernel;
  dim3 grid, block, cluster;
  std::size_t dynamic_smem;
  void (*body)(void*);
  void* ctx;
};
cudaError_t run_launch(const LaunchSpec& spec);

template <class... P> struct KernelCall {
  void (*kernel)(P...);
  std::tuple<std::decay_t<P>...> params;
  static void run(void* self) {
    auto* c = static_cast<KernelCall*>(self);
    std::apply(c->kernel, c->params);  // each thread gets its own copies of the parameters
  }
};

template <class... P, class... A>
cudaError_t launch(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t smem, dim3 cluster, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "a kernel launch passes every parameter");
  KernelCall<P...> call{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
  return run_launch(LaunchSpec{reinterpret_cast<const void*>(kernel), grid, block, cluster, smem,
                               &KernelCall<P...>::run, &call});
}

void set_seed(std::uint64_t seed);
std::uint64_t seed();

// Kernels launched by this process so far, and how many of them as thread-block clusters.
struct LaunchCounts {
  unsigned long long launches, cluster_launches;
};
LaunchCounts launch_counts();

}  // namespace fl_emu

// ---- built-in variables and intrinsics ------------------------------------------------------------
// The running thread's coordinates: the scheduler stores them before it resumes a thread (every
// emulated thread runs on the OS thread that launched the kernel).
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
constexpr int warpSize = 32;

#define FL_EMU_SITE (::fl_emu::Site{__FILE__, __LINE__})
#define __syncthreads() ::fl_emu::syncthreads(FL_EMU_SITE)
#define __syncwarp(...) ::fl_emu::fl_syncwarp(FL_EMU_SITE __VA_OPT__(, ) __VA_ARGS__)
#define __shfl_sync(...) ::fl_emu::fl_shfl(FL_EMU_SITE, ::fl_emu::Collective::kShflIdx, __VA_ARGS__)
#define __shfl_up_sync(...) ::fl_emu::fl_shfl(FL_EMU_SITE, ::fl_emu::Collective::kShflUp, __VA_ARGS__)
#define __shfl_down_sync(...) ::fl_emu::fl_shfl(FL_EMU_SITE, ::fl_emu::Collective::kShflDown, __VA_ARGS__)
#define __shfl_xor_sync(...) ::fl_emu::fl_shfl(FL_EMU_SITE, ::fl_emu::Collective::kShflXor, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::fl_emu::fl_ballot(FL_EMU_SITE, mask, pred)
#define __any_sync(mask, pred) (::fl_emu::fl_ballot(FL_EMU_SITE, mask, pred) != 0u)
#define __all_sync(mask, pred) (::fl_emu::fl_ballot(FL_EMU_SITE, mask, pred) == (mask))
#define __trap() ::fl_emu::trap(FL_EMU_SITE)
#define __threadfence() ::fl_emu::threadfence()
#define __threadfence_block() ::fl_emu::threadfence()
#define __threadfence_system() ::fl_emu::threadfence()

// Shared memory declarations (csrc/cuda/portable.cuh gives the nvcc spelling).
#define FL_SHARED_ARRAY(T, name, n)   \
  static const char name##_fl_key = 0; \
  T* const name = ::fl_emu::shared_array<T>(&name##_fl_key, (n))
#define FL_SHARED_VAR(T, name)         \
  static const char name##_fl_key = 0; \
  T& name = *::fl_emu::shared_array<T>(&name##_fl_key, 1)
#define FL_DYNAMIC_SHARED(T, name) T* const name = static_cast<T*>(::fl_emu::dynamic_shared())

namespace fl_emu {

inline void fl_syncwarp(Site site, unsigned mask = 0xffffffffu) {
  warp_collective(site, Collective::kSyncwarp, mask, 0, 0, 32);
}
template <class T> T fl_shfl(Site site, Collective kind, unsigned mask, T v, int b, int width = 32) {
  return shuffle(site, kind, mask, v, b, width);
}
inline unsigned fl_ballot(Site site, unsigned mask, int pred) {
  return unsigned(warp_collective(site, Collective::kBallot, mask, pred != 0, 0, 32));
}

}  // namespace fl_emu

// Round-to-nearest double arithmetic: the host compiler does not contract these (-ffp-contract=off).
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }

// Atomics: the threads of a launch never run at the same time (one host thread runs them, switching
// only at synchronisation points), so a read-modify-write is atomic as written.
namespace fl_emu {
template <class T, class F> inline T read_modify_write(T* p, F f) {
  const T old = *p;
  *p = f(old);
  return old;
}
}  // namespace fl_emu
template <class T> inline T atomicAdd(T* p, T v) { return fl_emu::read_modify_write(p, [v](T o) { return o + v; }); }
template <class T> inline T atomicMax(T* p, T v) { return fl_emu::read_modify_write(p, [v](T o) { return o > v ? o : v; }); }
template <class T> inline T atomicMin(T* p, T v) { return fl_emu::read_modify_write(p, [v](T o) { return o < v ? o : v; }); }
template <class T> inline T atomicExch(T* p, T v) { return fl_emu::read_modify_write(p, [v](T) { return v; }); }
template <class T> inline T atomicCAS(T* p, T compare, T v) {
  return fl_emu::read_modify_write(p, [compare, v](T o) { return o == compare ? v : o; });
}
