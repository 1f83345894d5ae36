// Compiled with baseline flags only: CPU detection, argument checks, and the memory the kernels
// use (weights in the math type, per-thread scratch, chunk partial sums), kept in thread-local
// buffers that grow and are reused, so calls allocate nothing once warm.
#include "dispatch.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "workspace.h"

#ifdef FL_HAVE_AVX512_BF16
FL_DECLARE_ISA(avx512_bf16)
#endif
#ifdef FL_HAVE_AVX512
FL_DECLARE_ISA(avx512)
#endif
#ifdef FL_HAVE_AVX2
FL_DECLARE_ISA(avx2)
#endif
#ifdef FL_HAVE_NEON
FL_DECLARE_ISA(neon)
#endif
FL_DECLARE_ISA(scalar)

namespace fastloss {
namespace {

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
// The OS must save the wide registers too (XCR0), not only the CPU support them.
bool os_saves(unsigned mask) {
  unsigned eax, ebx, ecx, edx;
  __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
  if (!(ecx & (1u << 27))) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & mask) == mask;
}

// F16C (the AVX2 tier's half-precision conversions): CPUID leaf 1, ECX bit 29. Not every AVX2 CPU
// in a virtual machine reports it, and __builtin_cpu_supports has no name for it.
bool cpu_has_f16c() {
  unsigned eax, ebx, ecx, edx;
  __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
  return (ecx >> 29) & 1u;
}
#endif

bool cpu_has(const std::string& isa) {
  if (isa == "scalar") return true;
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
  __builtin_cpu_init();
  if (isa == "avx2")
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c() && os_saves(0x6);
  if (isa == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c() && os_saves(0xE6);
  if (isa == "avx512_bf16") return cpu_has("avx512") && __builtin_cpu_supports("avx512bf16");
#endif
#if defined(__aarch64__)
  if (isa == "neon") return true;
#endif
  return false;
}

// Best first.
const IsaKernels* const kBuilt[] = {
#ifdef FL_HAVE_AVX512_BF16
    &fastloss_cpu_kernels_avx512_bf16,
#endif
#ifdef FL_HAVE_AVX512
    &fastloss_cpu_kernels_avx512,
#endif
#ifdef FL_HAVE_AVX2
    &fastloss_cpu_kernels_avx2,
#endif
#ifdef FL_HAVE_NEON
    &fastloss_cpu_kernels_neon,
#endif
    &fastloss_cpu_kernels_scalar,
};

const IsaKernels* find(const std::string& name) {
  for (const IsaKernels* k : kBuilt)
    if (name == k->name && cpu_has(name)) return k;
  return nullptr;
}

std::atomic<const IsaKernels*> g_isa{nullptr};
std::string g_isa_error;  // set once, under g_init
std::once_flag g_init;
std::atomic<int> g_threads{1};

const IsaKernels* isa() {
  std::call_once(g_init, [] {
    const char* env = std::getenv("FASTLOSS_CPU_ISA");
    if (env && *env) {
      if (const IsaKernels* k = find(env)) g_isa = k;
      else g_isa_error = std::string("FASTLOSS_CPU_ISA=") + env + " is not available on this CPU/build";
      return;
    }
    for (const IsaKernels* k : kBuilt)
      if (cpu_has(k->name)) { g_isa = k; break; }
  });
  const IsaKernels* k = g_isa.load();
  if (!k) throw std::invalid_argument(g_isa_error);
  return k;
}

const char* kind_error(int loss_id, bool rowwise) {
  if (loss_id < 0 || loss_id >= FL_LOSS_COUNT) return "unknown loss_id";
  bool is_rowwise = true;
  switch (static_cast<LossId>(loss_id)) {
#define FL_POINTWISE_CASE(name) case LOSS_##name:
    FL_LOSSES_POINTWISE(FL_POINTWISE_CASE)
#undef FL_POINTWISE_CASE
    is_rowwise = false;
    break;
#define FL_ROWWISE_CASE(name) case LOSS_##name:
    FL_LOSSES_NOT_POINTWISE(FL_ROWWISE_CASE)
#undef FL_ROWWISE_CASE
    break;
  }
  return is_rowwise == rowwise ? nullptr : "loss_id is of the other kind";
}

bool takes_soft_targets(int loss_id) {
#define FL_SOFT(name) if (loss_id == LOSS_##name) return true;
  FL_LOSSES_SOFT_TARGETS(FL_SOFT)
#undef FL_SOFT
  return false;
}

bool needs_logit_targets(int loss_id) {
#define FL_LOGITS(name) if (loss_id == LOSS_##name) return true;
  FL_LOSSES_LOGIT_TARGETS(FL_LOGITS)
#undef FL_LOGITS
  return false;
}

template <class T> T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

struct ThreadBuffers {
  std::vector<char> scratch;
  std::vector<double> partials;
  std::vector<float> weights_f;
  std::vector<double> weights_d;
};
thread_local ThreadBuffers tls;
thread_local const std::atomic<int>* tls_interrupt = nullptr;

Workspace workspace(const WorkPlan& plan, int64_t max_useful_threads) {
  Workspace ws{};
  ws.threads = int(std::max<int64_t>(1, std::min<int64_t>(g_threads.load(), max_useful_threads)));
  ws.scratch_per_thread = (plan.scratch_per_thread + 63) & ~size_t(63);
  char* raw = grow(tls.scratch, ws.scratch_per_thread * size_t(ws.threads) + 64);
  ws.scratch = raw + ((64 - reinterpret_cast<uintptr_t>(raw) % 64) % 64);
  ws.partials = grow(tls.partials, size_t(std::max<int64_t>(plan.chunks, 1)));
  return ws;
}

template <class S> const S* class_weights(std::vector<S>& buf, const FlRowwiseArgs& a, double& sum) {
  S* w = grow(buf, size_t(a.classes));
  const double fill = class_vector_fill(a.loss_id, a.params);
  sum = 0;
  for (int64_t c = 0; c < a.classes; ++c) {
    double v = fill;
    if (a.weight) std::memcpy(&v, a.weight + c, sizeof v);  // the caller's array may be misaligned
    w[c] = S(v);
    sum += v;
  }
  return w;
}

int fail(char* error, size_t size, const char* msg) {
  if (error && size) std::snprintf(error, size, "%s", msg);
  return -1;
}

// The *_grad_hess form writes both derivatives and reads x after writing the gradient of a row.
template <class Args> const char* hess_error(const Args& a) {
  if (!a.hess_out) return nullptr;
  if (!a.grad_out) return "hess_out needs grad_out";
  if (a.hess_out == a.x || a.grad_out == a.x || a.hess_out == a.grad_out)
    return "hess_out and grad_out must be distinct arrays, not x";
#define FL_NO_HESS(name) \
  if (a.loss_id == LOSS_##name) return "this loss has no native grad_hess kernel (the front end uses the reference)";
  FL_LOSSES_WITHOUT_NATIVE_HESS(FL_NO_HESS)
#undef FL_NO_HESS
  return nullptr;
}

}  // namespace

void set_call_interrupt(const std::atomic<int>* flag) { tls_interrupt = flag; }
const std::atomic<int>* call_interrupt() { return tls_interrupt; }

const char* current_isa() { return isa()->name; }

std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (const IsaKernels* k : kBuilt)
    if (cpu_has(k->name)) out.push_back(k->name);
  return out;
}

void set_isa(const std::string& name) {
  const IsaKernels* k = find(name);
  if (!k) throw std::invalid_argument("ISA '" + name + "' is not available on this CPU/build");
  std::call_once(g_init, [] {});
  g_isa = k;
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("num_threads must be a positive integer");
  g_threads = n;
}

int get_num_threads() { return g_threads.load(); }

void vector_math(int f, int dtype, const void* a, const void* b, const void* c, void* out, int64_t n) {
  isa()->vector_math(f, dtype, a, b, c, out, n);
}

extern "C" int fastloss_rowwise(const FlRowwiseArgs* a, double* total, char* error, size_t error_size) {
  try {
    if (!a || !total) return fail(error, error_size, "null argument");
    if (const char* e = kind_error(a->loss_id, true)) return fail(error, error_size, e);
    if (a->dtype < 0 || a->dtype >= FL_DTYPE_COUNT) return fail(error, error_size, "unknown dtype");
    if (a->outer < 0 || a->classes < 1 || a->inner < 0) return fail(error, error_size, "bad shape");
    if (const char* e = hess_error(*a)) return fail(error, error_size, e);
    if (a->outer == 0 || a->inner == 0) {  // no rows: nothing to read or write (and no class buffers)
      *total = 0;
      if (a->valid_rows) *a->valid_rows = 0;
      return 0;
    }
    const bool soft = a->soft_target != nullptr;
    if (soft && !takes_soft_targets(a->loss_id)) return fail(error, error_size, "this loss takes no soft targets");
    if (!soft && needs_logit_targets(a->loss_id)) return fail(error, error_size, "this loss needs float target logits");
    if (!a->x || (!soft && !a->target)) return fail(error, error_size, "x and target are required");
    FlRowwiseArgs args = *a;
    if (!soft) {
      const int64_t n = a->outer * a->inner;
      const IgnoreIndex ignore = ignore_index_of(a->loss_id, a->params);  // the loss's own, or none
      int64_t valid = 0;
      for (int64_t i = 0; i < n; ++i) {
        int64_t t;
        std::memcpy(&t, a->target + i, sizeof t);  // the caller's array may be misaligned
        if ((t < 0 || t >= a->classes) && t != ignore) {
          char msg[160];
          std::snprintf(msg, sizeof msg, "target %lld at row %lld is out of range [0, %lld) and is not ignore_index",
                        (long long)t, (long long)i, (long long)a->classes);
          return fail(error, error_size, msg);
        }
        valid += t != ignore;
      }
      if (a->valid_rows) *a->valid_rows = valid;
      if (a->divide_by_valid_rows) args.grad_scale = a->grad_scale / double(valid);  // inf/nan for none, as 1/0
    } else if (a->divide_by_valid_rows) {
      return fail(error, error_size, "divide_by_valid_rows needs class-index targets");
    }
    const IsaKernels* k = isa();
    const WorkPlan plan = k->rowwise_plan(args);
    Workspace ws = workspace(plan, plan.chunks);
    ws.weights = a->dtype == FL_FLOAT64 ? static_cast<const void*>(class_weights(tls.weights_d, args, ws.weight_sum))
                                        : static_cast<const void*>(class_weights(tls.weights_f, args, ws.weight_sum));
    *total = k->rowwise(args, ws);
    return 0;
  } catch (const std::exception& e) {
    return fail(error, error_size, e.what());
  }
}

extern "C" int fastloss_pointwise(const FlPointwiseArgs* a, double* total, char* error, size_t error_size) {
  try {
    if (!a || !total) return fail(error, error_size, "null argument");
    if (const char* e = kind_error(a->loss_id, false)) return fail(error, error_size, e);
    if (a->dtype < 0 || a->dtype >= FL_DTYPE_COUNT) return fail(error, error_size, "unknown dtype");
    if (a->n < 0) return fail(error, error_size, "bad shape");
    if (a->n > 0 && (!a->x || !a->target)) return fail(error, error_size, "x and target are required");
    if (const char* e = hess_error(*a)) return fail(error, error_size, e);
    for (int v = 0; v < FL_MAX_VECTORS; ++v)
      if (a->vectors[v] && a->n > 0 && (a->vector_period[v] <= 0 || a->n % a->vector_period[v] != 0))
        return fail(error, error_size, "a per-element vector's period must divide n");
    const IsaKernels* k = isa();
    const WorkPlan plan = k->pointwise_plan(*a);
    Workspace ws = workspace(plan, plan.chunks);
    int invalid = 0;
    ws.target_invalid = &invalid;
    *total = k->pointwise(*a, ws);
    if (invalid) {
      fail(error, error_size, "a target is outside the loss's domain");
      return FL_TARGET_OUT_OF_DOMAIN;
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(error, error_size, e.what());
  }
}

static const char* isa_or_error() noexcept {
  try {
    return current_isa();
  } catch (const std::exception&) {
    return "unavailable";
  }
}

const FlKernelTable kernel_table = {FL_KERNEL_ABI_VERSION, fastloss_rowwise, fastloss_pointwise, isa_or_error};

}  // namespace fastloss
