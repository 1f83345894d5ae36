// The math vocabulary of loss headers: one set of names for V = float, V = double (CPU reference
// path, CUDA threads), the one-lane tail type and every SIMD vector type (csrc/cpu/simd provide the
// same names for their own types, found by argument-dependent lookup), so a formula written once
// against V runs on scalars and on whole vectors alike, on every ISA and on CUDA.
//
// Vocabulary (V a value type, M its mask; accuracy of the float32 SIMD versions against float64,
// as tests/test_native_vector_math.py checks on every CPU tier, NEON under qemu; float64 vectors and
// the scalar/CUDA forms use the C library, <= 1 ulp unless said):
//   fl_abs(a), -a, a + b, a - b, a * b        exact
//   a / b                                     correctly rounded
//   fl_div(a, b)     a / b for a finite normal b with a normal reciprocal (e.g. 1 + e, 2 + u)
//                    and a finite quotient:
//                    SIMD float32 may use a refined reciprocal estimate, <= 1 ulp
//   fl_fma(a, b, c)  a * b + c, one rounding (scalar CPU without an FMA unit: the C library's fma)
//   fl_min(a, b), fl_max(a, b)  b when either is NaN (x86 minps/maxps), so fl_min(hi, fl_max(lo, e))
//                    clamps e and lets a NaN e through
//   fl_sign(a)       -1, 0, +1 (sign(0) = 0, sign(NaN) = NaN, as numpy.sign / torch.sign)
//   select(m, a, b)  m ? a : b lane-wise; comparisons (<, <=, >, >=, ==, !=) yield masks (bool for scalars)
//   fl_sqrt(a)       correctly rounded (a hardware instruction on every ISA)
//   fl_rsqrt(a)      1 / sqrt(a), <= 1.5 ulp (two roundings; no estimate instruction)
//   fl_exp(a)        <= 1 ulp; exp(-inf) = 0, overflow to inf, gradual underflow
//   fl_exp_nonpos(a) exp for a <= 0 (or NaN) only, e.g. exp(z - max z): one clamp less
//   fl_expm1(a)      exp(a) - 1 without cancellation near 0, <= 1.5 ulp
//   fl_log(a), fl_log1p(a)   <= 1 ulp, <= 1.5 ulp; log(0) = -inf, log(a < 0) = NaN
//   fl_log1p_unit(a) log1p for a in [0, 1] only (a cheaper series), <= 2 ulp
//   fl_pow(a, b)     a ** b: the C library's pow per lane (<= 1 ulp; slow on vectors: prefer
//                    exp/log forms in hot loops, or special-case common exponents as focal losses do)
//   fl_tanh(a)       <= 1.5 ulp (scalar ISA: glibc's tanhf, <= 2.2 ulp)
//   fl_sigmoid(a)    1 / (1 + exp(-a)) in the stable form, <= 3 ulp
//   fl_softplus(a)   log(1 + exp(a)) = max(a, 0) + log1p(exp(-|a|)), finite for finite a, <= 3 ulp
// NaN propagates through all of them (fl_min/fl_max: see above). ScalarOf<V>::type is the lane
// type (float or double).
#pragma once

#include <cmath>

// Every inline function lives in an inline namespace named after the instruction set it is
// compiled for (FASTLOSS_ISA, set per translation unit by csrc/cpu/CMakeLists.txt), so copies built
// with AVX-512 flags can never be merged by the linker into code that runs on a lesser CPU.
#ifndef FASTLOSS_ISA
#define FASTLOSS_ISA generic
#endif
#define FL_NAMESPACE_BEGIN namespace fastloss { inline namespace FASTLOSS_ISA {
#define FL_NAMESPACE_END } }

#if defined(__CUDACC__)
#define FL_HD __host__ __device__ __forceinline__
#else
#define FL_HD inline
#endif

FL_NAMESPACE_BEGIN

template <class V> struct ScalarOf { using type = typename V::scalar; };
template <> struct ScalarOf<float> { using type = float; };
template <> struct ScalarOf<double> { using type = double; };
template <class V> using scalar_t = typename ScalarOf<V>::type;

// A loss value and its derivative with respect to the input, for pointwise losses.
template <class V> struct LossGrad {
  V loss;
  V grad;
};

// The first and the (diagonal) second derivative with respect to the input, for the *_grad_hess
// form of point-wise losses (a loss struct's grad_hess(x, y)).
template <class V> struct GradHess {
  V grad;
  V hess;
};

FL_HD float select(bool m, float a, float b) { return m ? a : b; }
FL_HD double select(bool m, double a, double b) { return m ? a : b; }
FL_HD float fl_min(float a, float b) { return a < b ? a : b; }
FL_HD double fl_min(double a, double b) { return a < b ? a : b; }
FL_HD float fl_max(float a, float b) { return a > b ? a : b; }
FL_HD double fl_max(double a, double b) { return a > b ? a : b; }
FL_HD float fl_abs(float a) { return ::fabsf(a); }
FL_HD double fl_abs(double a) { return ::fabs(a); }
FL_HD float fl_exp(float a) { return ::expf(a); }
FL_HD double fl_exp(double a) { return ::exp(a); }
// exp(a) for a <= 0 (or NaN), e.g. exp(z - max z) or exp(-|x|): vector types skip the overflow clamp.
FL_HD float fl_exp_nonpos(float a) { return ::expf(a); }
FL_HD double fl_exp_nonpos(double a) { return ::exp(a); }
FL_HD float fl_log(float a) { return ::logf(a); }
FL_HD double fl_log(double a) { return ::log(a); }
FL_HD float fl_log1p(float a) { return ::log1pf(a); }
FL_HD double fl_log1p(double a) { return ::log1p(a); }
// log1p(u) for u in [0, 1] only (e.g. log1p(exp(-|x|)) of softplus); vector types may use a
// cheaper series there.
FL_HD float fl_log1p_unit(float a) { return ::log1pf(a); }
FL_HD double fl_log1p_unit(double a) { return ::log1p(a); }
FL_HD float fl_expm1(float a) { return ::expm1f(a); }
FL_HD double fl_expm1(double a) { return ::expm1(a); }
FL_HD float fl_tanh(float a) { return ::tanhf(a); }
FL_HD double fl_tanh(double a) { return ::tanh(a); }
FL_HD float fl_pow(float a, float b) { return ::powf(a, b); }
FL_HD double fl_pow(double a, double b) { return ::pow(a, b); }
// a / b where b is a finite normal number whose reciprocal is normal too (a denominator such as
// 1 + e or 2 + u); SIMD types may use a reciprocal estimate refined by a Newton step there, within
// 1 ulp of the correctly rounded quotient. Scalars (CPU reference, CUDA) divide.
FL_HD float fl_div(float a, float b) { return a / b; }
FL_HD double fl_div(double a, double b) { return a / b; }
FL_HD float fl_sqrt(float a) { return ::sqrtf(a); }
FL_HD double fl_sqrt(double a) { return ::sqrt(a); }
FL_HD float fl_fma(float a, float b, float c) { return ::fmaf(a, b, c); }
FL_HD double fl_fma(double a, double b, double c) { return ::fma(a, b, c); }
FL_HD bool fl_isnan(float a) { return a != a; }
FL_HD bool fl_isnan(double a) { return a != a; }

// sign(e) with sign(0) = 0 and sign(NaN) = NaN, as numpy.sign / torch.sign.
template <class V> FL_HD V fl_sign(V e) {
  return select(e > V(0), V(1), select(e < V(0), V(-1), e));
}

// 1 / sqrt(a): a division, not a reciprocal-square-root estimate, so every ISA agrees within 1 ulp.
template <class V> FL_HD V fl_rsqrt(V a) { return V(1) / fl_sqrt(a); }

// sigmoid(x) from e = exp(-|x|) in (0, 1]: 1 / (1 + e) for x >= 0, e / (1 + e) below (no overflow,
// no cancellation); 1 + e lies in [1, 2], within fl_div's domain.
template <class V> FL_HD V fl_sigmoid(V x) {
  const V e = fl_exp_nonpos(-fl_abs(x));
  const V r = fl_div(V(1), V(1) + e);
  return select(x >= V(0), r, e * r);
}

// softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): both terms >= 0, exp(-|x|) in
// (0, 1] (fl_log1p_unit's domain). A NaN x gives NaN (fl_max gives 0, the log1p term NaN).
template <class V> FL_HD V fl_softplus(V x) {
  return fl_max(x, V(0)) + fl_log1p_unit(fl_exp_nonpos(-fl_abs(x)));
}

FL_NAMESPACE_END
