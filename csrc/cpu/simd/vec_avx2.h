// AVX2 + FMA + F16C vector types: Vf = 8 x float, Vd = 4 x double. Compiled only in the avx2
// translation unit. Masks are all-ones/all-zeros lanes; bfloat16 rounds with integer bit tricks.
#pragma once

#include <immintrin.h>

#include "storage.h"
#include "vec_scalar.h"

FL_NAMESPACE_BEGIN

struct Mf { __m256 m; };
struct Md { __m256d m; };

struct Vf {
  using scalar = float;
  using mask = Mf;
  static constexpr int lanes = 8;
  __m256 v;
  Vf() = default;
  Vf(float s) : v(_mm256_set1_ps(s)) {}  // NOLINT: broadcast
  Vf(__m256 x) : v(x) {}                  // NOLINT
  static Vf load(const float* p) { return _mm256_loadu_ps(p); }
  static Vf load(const f16* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static Vf load(const bf16* p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  __m128i to_f16() const { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  __m128i to_bf16() const {
    __m256i b = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40));
    r = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(qnan), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08));
  }
  void store(f16* p) const { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), to_f16()); }
  void store(bf16* p) const { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), to_bf16()); }
  // Non-temporal stores for gradients far larger than the caches; p needs 16-byte alignment.
  void stream(float* p) const {
    _mm_stream_ps(p, _mm256_castps256_ps128(v));
    _mm_stream_ps(p + 4, _mm256_extractf128_ps(v, 1));
  }
  void stream(f16* p) const { _mm_stream_si128(reinterpret_cast<__m128i*>(p), to_f16()); }
  void stream(bf16* p) const { _mm_stream_si128(reinterpret_cast<__m128i*>(p), to_bf16()); }
  void lanes_to(float* out) const { _mm256_storeu_ps(out, v); }
  static Vf from_lanes(const float* in) { return _mm256_loadu_ps(in); }
};

struct Vd {
  using scalar = double;
  using mask = Md;
  static constexpr int lanes = 4;
  __m256d v;
  Vd() = default;
  Vd(double s) : v(_mm256_set1_pd(s)) {}  // NOLINT: broadcast
  Vd(__m256d x) : v(x) {}                  // NOLINT
  static Vd load(const double* p) { return _mm256_loadu_pd(p); }
  void store(double* p) const { _mm256_storeu_pd(p, v); }
  void stream(double* p) const {
    _mm_stream_pd(p, _mm256_castpd256_pd128(v));
    _mm_stream_pd(p + 2, _mm256_extractf128_pd(v, 1));
  }
  void lanes_to(double* out) const { _mm256_storeu_pd(out, v); }
  static Vd from_lanes(const double* in) { return _mm256_loadu_pd(in); }
};

#define FL_AVX2_OPS(V, M, sfx)                                                              \
  inline V operator+(V a, V b) { return _mm256_add_##sfx(a.v, b.v); }                            \
  inline V operator-(V a, V b) { return _mm256_sub_##sfx(a.v, b.v); }                            \
  inline V operator*(V a, V b) { return _mm256_mul_##sfx(a.v, b.v); }                            \
  inline V operator/(V a, V b) { return _mm256_div_##sfx(a.v, b.v); }                            \
  inline V operator-(V a) { return _mm256_xor_##sfx(a.v, _mm256_set1_##sfx(-0.0)); }             \
  inline M operator<(V a, V b) { return {_mm256_cmp_##sfx(a.v, b.v, _CMP_LT_OQ)}; }               \
  inline M operator<=(V a, V b) { return {_mm256_cmp_##sfx(a.v, b.v, _CMP_LE_OQ)}; }              \
  inline M operator>(V a, V b) { return {_mm256_cmp_##sfx(a.v, b.v, _CMP_GT_OQ)}; }               \
  inline M operator>=(V a, V b) { return {_mm256_cmp_##sfx(a.v, b.v, _CMP_GE_OQ)}; }              \
  inline M operator==(V a, V b) { return {_mm256_cmp_##sfx(a.v, b.v, _CMP_EQ_OQ)}; }              \
  inline M operator!=(V a, V b) { return {_mm256_cmp_##sfx(a.v, b.v, _CMP_NEQ_UQ)}; }             \
  inline V select(M m, V a, V b) { return _mm256_blendv_##sfx(b.v, a.v, m.m); }                  \
  inline V fl_min(V a, V b) { return _mm256_min_##sfx(a.v, b.v); }                               \
  inline V fl_max(V a, V b) { return _mm256_max_##sfx(a.v, b.v); }                               \
  inline V fl_abs(V a) { return _mm256_andnot_##sfx(_mm256_set1_##sfx(-0.0), a.v); }             \
  inline V fl_sqrt(V a) { return _mm256_sqrt_##sfx(a.v); }                                       \
  inline V fl_fma(V a, V b, V c) { return _mm256_fmadd_##sfx(a.v, b.v, c.v); }                   \
  inline V vround(V a) { return _mm256_round_##sfx(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
FL_AVX2_OPS(Vf, Mf, ps)
FL_AVX2_OPS(Vd, Md, pd)
#undef FL_AVX2_OPS

inline float hsum(Vf a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline float hmax(Vf a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
inline double hsum(Vd a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
inline double hmax(Vd a) {
  __m128d s = _mm_max_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
  return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
}

// p * 2^n for integral n in [-151, 129], in two steps so that both factors are normal floats
// (gives inf on overflow and gradual underflow).
inline Vf scale2(Vf p, Vf n) {
  __m256i ni = _mm256_cvtps_epi32(n.v);
  __m256i n1 = _mm256_srai_epi32(ni, 1);
  __m256i n2 = _mm256_sub_epi32(ni, n1);
  __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p.v, f1), f2);
}

// a / b for a normal b with a normal reciprocal (math_ops.h). rcp_ps has a relative error up to
// 1.5 * 2^-12, so the reciprocal takes one Newton step (~2^-23) before the quotient takes the
// residual step of the AVX-512 version (vec_avx512.h).
inline Vf fl_div(Vf a, Vf b) {
  __m256 r = _mm256_rcp_ps(b.v);
  r = _mm256_fmadd_ps(_mm256_fnmadd_ps(r, b.v, _mm256_set1_ps(1.0f)), r, r);
  __m256 q = _mm256_mul_ps(a.v, r);
  return _mm256_fmadd_ps(_mm256_fnmadd_ps(q, b.v, a.v), r, q);
}
inline Vd fl_div(Vd a, Vd b) { return a / b; }

inline void frexp_sqrt2(Vf x, Vf& m, Vf& e) {
  Mf sub = x < Vf(1.17549435e-38f);  // subnormal: scale into the normal range first
  Vf xs = select(sub, x * Vf(8388608.0f), x);
  __m256i b = _mm256_castps_si256(xs.v);
  __m256i ex = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(b, 23), _mm256_set1_epi32(0xFF)), _mm256_set1_epi32(127));
  e = Vf(_mm256_cvtepi32_ps(ex)) - select(sub, Vf(23.0f), Vf(0.0f));
  m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(b, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F800000)));
  Mf big = m > Vf(1.41421356f);
  m = select(big, m * Vf(0.5f), m);
  e = select(big, e + Vf(1.0f), e);
}

inline void widen_add(Vd& acc, Vf v) {
  acc = acc + Vd(_mm256_cvtps_pd(_mm256_castps256_ps128(v.v)));
  acc = acc + Vd(_mm256_cvtps_pd(_mm256_extractf128_ps(v.v, 1)));
}
inline void widen_add(Vd& acc, Vd v) { acc = acc + v; }
inline void stream_fence() { _mm_sfence(); }

FL_NAMESPACE_END

#include "vmath_f32.h"
#include "vec_double_lanes.h"

FL_NAMESPACE_BEGIN
FL_VMATH_F32(Vf)
FL_DOUBLE_LANEWISE(Vd)
FL_NAMESPACE_END
