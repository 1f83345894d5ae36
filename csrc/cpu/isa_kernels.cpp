// The kernels of one instruction set. CMake compiles this file once per ISA with that ISA's flags
// only and FASTLOSS_ISA set to its name (which also names the inline namespace of every inline
// function, so nothing compiled here can leak into another ISA's code).
#if defined(FL_ISA_AVX512) || defined(FL_ISA_AVX512_BF16)
#include "simd/vec_avx512.h"
#elif defined(FL_ISA_AVX2)
#include "simd/vec_avx2.h"
#elif defined(FL_ISA_NEON)
#include "simd/vec_neon.h"
#else
#include "simd/vec_scalar_isa.h"
#endif

#include "pointwise_kernel.h"
#include "rowwise_kernel.h"
#include "vector_math_hook.h"
#include "workspace.h"

#if defined(FL_ISA_AVX512_BF16)
// avx512_bf16 differs from avx512 only where float32 is rounded to bfloat16 (one instruction for
// the bit trick, simd/vec_avx512.h): its own kernels for bfloat16 storage, avx512's for every other
// dtype (the same code, not compiled twice; only the small plans and the vector-math test hook are).
FL_DECLARE_ISA(avx512)
#endif

FL_NAMESPACE_BEGIN

static WorkPlan rowwise_plan_entry(const FlRowwiseArgs& a) {
  return a.dtype == FL_FLOAT64 ? rowwise_plan<Vd>(a) : rowwise_plan<Vf>(a);
}

static double rowwise_entry(const FlRowwiseArgs& a, const Workspace& ws) {
#if defined(FL_ISA_AVX512_BF16)
  return a.dtype == FL_BFLOAT16 ? rowwise_run<Vf, bf16>(a, ws) : fastloss_cpu_kernels_avx512.rowwise(a, ws);
#else
  switch (a.dtype) {
    case FL_FLOAT64: return rowwise_run<Vd, double>(a, ws);
    case FL_FLOAT16: return rowwise_run<Vf, f16>(a, ws);
    case FL_BFLOAT16: return rowwise_run<Vf, bf16>(a, ws);
    default: return rowwise_run<Vf, float>(a, ws);
  }
#endif
}

static WorkPlan pointwise_plan_entry(const FlPointwiseArgs& a) { return pointwise_plan(a); }

static double pointwise_entry(const FlPointwiseArgs& a, const Workspace& ws) {
#if defined(FL_ISA_AVX512_BF16)
  return a.dtype == FL_BFLOAT16 ? pointwise_run<Vf, Vd, bf16>(a, ws) : fastloss_cpu_kernels_avx512.pointwise(a, ws);
#else
  switch (a.dtype) {
    case FL_FLOAT64: return pointwise_run<Vd, Vd, double>(a, ws);
    case FL_FLOAT16: return pointwise_run<Vf, Vd, f16>(a, ws);
    case FL_BFLOAT16: return pointwise_run<Vf, Vd, bf16>(a, ws);
    default: return pointwise_run<Vf, Vd, float>(a, ws);
  }
#endif
}

// out[i] = f(a[i], b[i], c[i]) with this ISA's vector math (f: vector_math_hook.h), float32 or
// float64 (dtype FL_FLOAT32 / FL_FLOAT64); b and c may be null for functions that do not take them.
template <class V>
static void vector_math_run(int f, const typename V::scalar* a, const typename V::scalar* b,
                            const typename V::scalar* c, typename V::scalar* out, int64_t n) {
  using S = typename V::scalar;
  auto apply = [f](V a, V b, V c) {
    using W = V;
    switch (static_cast<VectorMathId>(f)) {
#define FL_VM_CASE(name, arity, expr) \
  case FL_VM_##name: return W(expr);
      FL_VECTOR_MATH_FUNCTIONS(FL_VM_CASE)
#undef FL_VM_CASE
      case FL_VM_COUNT: break;
    }
    return a;
  };
  auto at = [](const S* p, int64_t i, const S* fallback) { return p ? p + i : fallback + i; };
  int64_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes)
    apply(V::load(a + i), V::load(at(b, i, a)), V::load(at(c, i, a))).store(out + i);
  if (i < n) {  // the tail through a padded vector, so every value sees the vector code
    S pa[V::lanes], pb[V::lanes], pc[V::lanes], res[V::lanes];
    for (int j = 0; j < V::lanes; ++j) {
      const bool in = i + j < n;
      pa[j] = in ? a[i + j] : S(1);
      pb[j] = in ? *at(b, i + j, a) : S(1);
      pc[j] = in ? *at(c, i + j, a) : S(1);
    }
    apply(V::load(pa), V::load(pb), V::load(pc)).store(res);
    for (int j = 0; i + j < n; ++j) out[i + j] = res[j];
  }
}

static void vector_math_entry(int f, int dtype, const void* a, const void* b, const void* c, void* out, int64_t n) {
  if (dtype == FL_FLOAT64)
    vector_math_run<Vd>(f, static_cast<const double*>(a), static_cast<const double*>(b), static_cast<const double*>(c),
                        static_cast<double*>(out), n);
  else
    vector_math_run<Vf>(f, static_cast<const float*>(a), static_cast<const float*>(b), static_cast<const float*>(c),
                        static_cast<float*>(out), n);
}

FL_NAMESPACE_END

#define FL_STR2(x) #x
#define FL_STR(x) FL_STR2(x)
#define FL_CAT2(a, b) a##b
#define FL_CAT(a, b) FL_CAT2(a, b)

extern "C" const fastloss::IsaKernels FL_CAT(fastloss_cpu_kernels_, FASTLOSS_ISA) = {
    FL_STR(FASTLOSS_ISA),         fastloss::rowwise_plan_entry,   fastloss::rowwise_entry,
    fastloss::pointwise_plan_entry, fastloss::pointwise_entry, fastloss::vector_math_entry,
};
