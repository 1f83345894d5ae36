// AVX-512 (F, BW, DQ, VL) vector types: Vf = 16 x float, Vd = 8 x double. Compiled only in the
// avx512 translation unit with exactly those flags. 16-bit storage converts in registers:
// float16 with vcvtph2ps / vcvtps2ph (round to nearest even), bfloat16 with integer shifts and a
// round-to-nearest-even bit trick, or in the avx512_bf16 build (-mavx512bf16) with vcvtneps2bf16,
// which rounds alike but flushes float32 subnormals to zero: a vector holding one takes the bit
// trick (the two agree on all 2^32 float32 values then, checked exhaustively).
#pragma once

#include <immintrin.h>

#include "storage.h"
#include "vec_scalar.h"

FL_NAMESPACE_BEGIN

struct Mf { __mmask16 k; };
struct Md { __mmask8 k; };

struct Vf {
  using scalar = float;
  using mask = Mf;
  static constexpr int lanes = 16;
  __m512 v;
  Vf() = default;
  Vf(float s) : v(_mm512_set1_ps(s)) {}  // NOLINT: broadcast
  Vf(__m512 x) : v(x) {}                  // NOLINT
  static Vf load(const float* p) { return _mm512_loadu_ps(p); }
  static Vf load(const f16* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static Vf load(const bf16* p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  __m256i to_f16() const { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  __m256i to_bf16() const {
#ifdef __AVX512BF16__
    if (!_mm512_fpclass_ps_mask(v, 0x20)) return __m256i(_mm512_cvtneps_pbh(v));  // 0x20: subnormal
#endif
    __m512i b = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    __m512i qnan = _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
    r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, qnan);
    return _mm512_cvtepi32_epi16(r);
  }
  void store(f16* p) const { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), to_f16()); }
  void store(bf16* p) const { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), to_bf16()); }
  // A row's last n < 16 elements (masked: nothing past p + n is read or written; the lanes past n
  // load as zero). The other ISAs go through a buffer (step_load / step_store in row_loop.h).
  static __mmask16 first(int n) { return __mmask16((1u << n) - 1); }
  static Vf load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(first(n), p); }
  static Vf load_n(const f16* p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(first(n), p)); }
  static Vf load_n(const bf16* p, int n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(first(n), p)), 16));
  }
  void store_n(float* p, int n) const { _mm512_mask_storeu_ps(p, first(n), v); }
  void store_n(f16* p, int n) const { _mm256_mask_storeu_epi16(p, first(n), to_f16()); }
  void store_n(bf16* p, int n) const { _mm256_mask_storeu_epi16(p, first(n), to_bf16()); }
  Vf keep_n(int n, float fill) const { return _mm512_mask_mov_ps(_mm512_set1_ps(fill), first(n), v); }
  // Non-temporal stores for gradients far larger than the caches. p needs only 16-byte alignment
  // (what every NumPy buffer has): 128-bit streaming stores fill whole lines in the
  // write-combining buffers just as well.
  void stream(float* p) const {
    _mm_stream_ps(p, _mm512_castps512_ps128(v));
    _mm_stream_ps(p + 4, _mm512_extractf32x4_ps(v, 1));
    _mm_stream_ps(p + 8, _mm512_extractf32x4_ps(v, 2));
    _mm_stream_ps(p + 12, _mm512_extractf32x4_ps(v, 3));
  }
  void stream(f16* p) const { stream_halves(p, to_f16()); }
  void stream(bf16* p) const { stream_halves(p, to_bf16()); }
  template <class T> static void stream_halves(T* p, __m256i h) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(h));
    _mm_stream_si128(reinterpret_cast<__m128i*>(p) + 1, _mm256_extracti128_si256(h, 1));
  }
  void lanes_to(float* out) const { _mm512_storeu_ps(out, v); }
  static Vf from_lanes(const float* in) { return _mm512_loadu_ps(in); }
};

struct Vd {
  using scalar = double;
  using mask = Md;
  static constexpr int lanes = 8;
  __m512d v;
  Vd() = default;
  Vd(double s) : v(_mm512_set1_pd(s)) {}  // NOLINT: broadcast
  Vd(__m512d x) : v(x) {}                  // NOLINT
  static Vd load(const double* p) { return _mm512_loadu_pd(p); }
  void store(double* p) const { _mm512_storeu_pd(p, v); }
  static __mmask8 first(int n) { return __mmask8((1u << n) - 1); }  // as Vf's
  static Vd load_n(const double* p, int n) { return _mm512_maskz_loadu_pd(first(n), p); }
  void store_n(double* p, int n) const { _mm512_mask_storeu_pd(p, first(n), v); }
  Vd keep_n(int n, double fill) const { return _mm512_mask_mov_pd(_mm512_set1_pd(fill), first(n), v); }
  void stream(double* p) const {
    _mm_stream_pd(p, _mm512_castpd512_pd128(v));
    _mm_stream_pd(p + 2, _mm512_extractf64x2_pd(v, 1));
    _mm_stream_pd(p + 4, _mm512_extractf64x2_pd(v, 2));
    _mm_stream_pd(p + 6, _mm512_extractf64x2_pd(v, 3));
  }
  void lanes_to(double* out) const { _mm512_storeu_pd(out, v); }
  static Vd from_lanes(const double* in) { return _mm512_loadu_pd(in); }
};

#define FL_AVX512_OPS(V, M, sfx)                                                                 \
  inline V operator+(V a, V b) { return _mm512_add_##sfx(a.v, b.v); }                            \
  inline V operator-(V a, V b) { return _mm512_sub_##sfx(a.v, b.v); }                            \
  inline V operator*(V a, V b) { return _mm512_mul_##sfx(a.v, b.v); }                            \
  inline V operator/(V a, V b) { return _mm512_div_##sfx(a.v, b.v); }                            \
  inline V operator-(V a) { return _mm512_sub_##sfx(_mm512_setzero_##sfx(), a.v); }             \
  inline M operator<(V a, V b) { return {_mm512_cmp_##sfx##_mask(a.v, b.v, _CMP_LT_OQ)}; }        \
  inline M operator<=(V a, V b) { return {_mm512_cmp_##sfx##_mask(a.v, b.v, _CMP_LE_OQ)}; }       \
  inline M operator>(V a, V b) { return {_mm512_cmp_##sfx##_mask(a.v, b.v, _CMP_GT_OQ)}; }        \
  inline M operator>=(V a, V b) { return {_mm512_cmp_##sfx##_mask(a.v, b.v, _CMP_GE_OQ)}; }       \
  inline M operator==(V a, V b) { return {_mm512_cmp_##sfx##_mask(a.v, b.v, _CMP_EQ_OQ)}; }      \
  inline M operator!=(V a, V b) { return {_mm512_cmp_##sfx##_mask(a.v, b.v, _CMP_NEQ_UQ)}; }     \
  inline V select(M m, V a, V b) { return _mm512_mask_blend_##sfx(m.k, b.v, a.v); }              \
  inline V fl_min(V a, V b) { return _mm512_min_##sfx(a.v, b.v); }                               \
  inline V fl_max(V a, V b) { return _mm512_max_##sfx(a.v, b.v); }                               \
  inline V fl_abs(V a) { return _mm512_abs_##sfx(a.v); }                                         \
  inline V fl_sqrt(V a) { return _mm512_sqrt_##sfx(a.v); }                                       \
  inline V fl_fma(V a, V b, V c) { return _mm512_fmadd_##sfx(a.v, b.v, c.v); }                   \
  inline V vround(V a) { return _mm512_roundscale_##sfx(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); } \
  inline V scale2(V p, V n) { return _mm512_scalef_##sfx(p.v, n.v); }
FL_AVX512_OPS(Vf, Mf, ps)
FL_AVX512_OPS(Vd, Md, pd)
#undef FL_AVX512_OPS

// Horizontal sum / max in a fixed tree order (GCC 12's _mm512_reduce_* trip -Wuninitialized).
inline __m256 fold_halves(Vf a, bool max) {
  __m256 lo = _mm512_castps512_ps256(a.v), hi = _mm512_castps512_ps256(_mm512_shuffle_f32x4(a.v, a.v, 0xEE));
  return max ? _mm256_max_ps(lo, hi) : _mm256_add_ps(lo, hi);
}
inline float hsum(Vf a) {
  __m256 h = fold_halves(a, false);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline float hmax(Vf a) {
  __m256 h = fold_halves(a, true);
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
inline __m256d fold_halves(Vd a, bool max) {
  __m256d lo = _mm512_castpd512_pd256(a.v), hi = _mm512_castpd512_pd256(_mm512_shuffle_f64x2(a.v, a.v, 0xEE));
  return max ? _mm256_max_pd(lo, hi) : _mm256_add_pd(lo, hi);
}
inline double hsum(Vd a) {
  __m256d h = fold_halves(a, false);
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
inline double hmax(Vd a) {
  __m256d h = fold_halves(a, true);
  __m128d s = _mm_max_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
  return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
}

// a / b for a normal b with a normal reciprocal (math_ops.h): vdivps costs 5-16 cycles per
// vector, this 4 pipelined operations. q = a r with r = rcp14(b) (relative error < 2^-14); one
// Newton step on the residual a - q b (exact by the fma) leaves ~2^-28 before the last rounding.
inline Vf fl_div(Vf a, Vf b) {
  __m512 r = _mm512_rcp14_ps(b.v);
  __m512 q = _mm512_mul_ps(a.v, r);
  return _mm512_fmadd_ps(_mm512_fnmadd_ps(q, b.v, a.v), r, q);
}
inline Vd fl_div(Vd a, Vd b) { return a / b; }

inline void frexp_sqrt2(Vf x, Vf& m, Vf& e) {
  e = _mm512_getexp_ps(x.v);
  m = _mm512_getmant_ps(x.v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
  Mf big = m > Vf(1.41421356f);
  m = select(big, m * Vf(0.5f), m);
  e = select(big, e + Vf(1.0f), e);
}

inline void widen_add(Vd& acc, Vf v) {
  acc = acc + Vd(_mm512_cvtps_pd(_mm512_castps512_ps256(v.v)));
  acc = acc + Vd(_mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_shuffle_f32x4(v.v, v.v, 0xEE))));
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
