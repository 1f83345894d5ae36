// AArch64 NEON (Advanced SIMD, baseline on every aarch64 CPU): Vf = 4 x float, Vd = 2 x double.
// float16 converts with fcvtl/fcvtn (round to nearest even per FPCR default), bfloat16 with
// integer shifts and the same round-to-nearest-even bit trick as x86. fl_min/fl_max are a compare
// and a select, not vminq/vmaxq (NaN if either operand is NaN): math_ops.h's contract is x86's,
// b when either is NaN, and a running max over a row that holds a NaN must give what the other
// ISAs give (tests/test_neon_qemu.py found the crammer_singer hinge differing).
// Cross-compile check: see csrc/cpu/README.md.
#pragma once

#include <arm_neon.h>

#include "storage.h"
#include "vec_scalar.h"

FL_NAMESPACE_BEGIN

struct Mf { uint32x4_t m; };
struct Md { uint64x2_t m; };

struct Vf {
  using scalar = float;
  using mask = Mf;
  static constexpr int lanes = 4;
  float32x4_t v;
  Vf() = default;
  Vf(float s) : v(vdupq_n_f32(s)) {}  // NOLINT: broadcast
  Vf(float32x4_t x) : v(x) {}          // NOLINT
  static Vf load(const float* p) { return vld1q_f32(p); }
  static Vf load(const f16* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p))));
  }
  static Vf load(const bf16* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p)), 16));
  }
  void store(float* p) const { vst1q_f32(p, v); }
  void store(f16* p) const { vst1_u16(reinterpret_cast<uint16_t*>(p), vreinterpret_u16_f16(vcvt_f16_f32(v))); }
  void store(bf16* p) const {
    uint32x4_t b = vreinterpretq_u32_f32(v);
    uint32x4_t lsb = vandq_u32(vshrq_n_u32(b, 16), vdupq_n_u32(1));
    uint32x4_t r = vshrq_n_u32(vaddq_u32(b, vaddq_u32(lsb, vdupq_n_u32(0x7FFF))), 16);
    uint32x4_t qnan = vorrq_u32(vshrq_n_u32(b, 16), vdupq_n_u32(0x40));
    r = vbslq_u32(vceqq_f32(v, v), r, qnan);
    vst1_u16(reinterpret_cast<uint16_t*>(p), vmovn_u32(r));
  }
  template <class T> void stream(T* p) const { store(p); }
  void lanes_to(float* out) const { vst1q_f32(out, v); }
  static Vf from_lanes(const float* in) { return vld1q_f32(in); }
};

struct Vd {
  using scalar = double;
  using mask = Md;
  static constexpr int lanes = 2;
  float64x2_t v;
  Vd() = default;
  Vd(double s) : v(vdupq_n_f64(s)) {}  // NOLINT: broadcast
  Vd(float64x2_t x) : v(x) {}           // NOLINT
  static Vd load(const double* p) { return vld1q_f64(p); }
  void store(double* p) const { vst1q_f64(p, v); }
  template <class T> void stream(T* p) const { store(p); }
  void lanes_to(double* out) const { vst1q_f64(out, v); }
  static Vd from_lanes(const double* in) { return vld1q_f64(in); }
};

inline uint32x4_t mask_not(uint32x4_t m) { return vmvnq_u32(m); }
inline uint64x2_t mask_not(uint64x2_t m) { return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(m))); }

#define FL_NEON_OPS(V, M, sfx)                                                              \
  inline V operator+(V a, V b) { return vaddq_##sfx(a.v, b.v); }                                  \
  inline V operator-(V a, V b) { return vsubq_##sfx(a.v, b.v); }                                  \
  inline V operator*(V a, V b) { return vmulq_##sfx(a.v, b.v); }                                  \
  inline V operator/(V a, V b) { return vdivq_##sfx(a.v, b.v); }                                  \
  inline V operator-(V a) { return vnegq_##sfx(a.v); }                                            \
  inline M operator<(V a, V b) { return {vcltq_##sfx(a.v, b.v)}; }                                \
  inline M operator<=(V a, V b) { return {vcleq_##sfx(a.v, b.v)}; }                               \
  inline M operator>(V a, V b) { return {vcgtq_##sfx(a.v, b.v)}; }                                \
  inline M operator>=(V a, V b) { return {vcgeq_##sfx(a.v, b.v)}; }                               \
  inline M operator==(V a, V b) { return {vceqq_##sfx(a.v, b.v)}; }                               \
  inline M operator!=(V a, V b) { return {mask_not(vceqq_##sfx(a.v, b.v))}; }                    \
  inline V select(M m, V a, V b) { return vbslq_##sfx(m.m, a.v, b.v); }                           \
  inline V fl_min(V a, V b) { return vbslq_##sfx(vcltq_##sfx(a.v, b.v), a.v, b.v); }              \
  inline V fl_max(V a, V b) { return vbslq_##sfx(vcgtq_##sfx(a.v, b.v), a.v, b.v); }              \
  inline V fl_abs(V a) { return vabsq_##sfx(a.v); }                                               \
  inline V fl_sqrt(V a) { return vsqrtq_##sfx(a.v); }                                             \
  inline V fl_fma(V a, V b, V c) { return vfmaq_##sfx(c.v, a.v, b.v); }                           \
  inline V fl_div(V a, V b) { return vdivq_##sfx(a.v, b.v); }                                     \
  inline V vround(V a) { return vrndnq_##sfx(a.v); }
FL_NEON_OPS(Vf, Mf, f32)
FL_NEON_OPS(Vd, Md, f64)
#undef FL_NEON_OPS

inline float hsum(Vf a) {  // fixed order: (l0 + l2) + (l1 + l3)
  float32x2_t s = vadd_f32(vget_low_f32(a.v), vget_high_f32(a.v));
  return vget_lane_f32(s, 0) + vget_lane_f32(s, 1);
}
inline float hmax(Vf a) {  // (l0 max l2) max (l1 max l3), each as fl_max
  const float32x2_t lo = vget_low_f32(a.v), hi = vget_high_f32(a.v);
  const float32x2_t s = vbsl_f32(vcgt_f32(lo, hi), lo, hi);
  return fl_max(vget_lane_f32(s, 0), vget_lane_f32(s, 1));
}
inline double hsum(Vd a) { return vgetq_lane_f64(a.v, 0) + vgetq_lane_f64(a.v, 1); }
inline double hmax(Vd a) { return fl_max(vgetq_lane_f64(a.v, 0), vgetq_lane_f64(a.v, 1)); }

// p * 2^n for integral n in [-151, 129], in two normal-range factors (overflow -> inf,
// gradual underflow).
inline Vf scale2(Vf p, Vf n) {
  int32x4_t ni = vcvtq_s32_f32(n.v);
  int32x4_t n1 = vshrq_n_s32(ni, 1);
  int32x4_t n2 = vsubq_s32(ni, n1);
  float32x4_t f1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
  float32x4_t f2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
  return vmulq_f32(vmulq_f32(p.v, f1), f2);
}

inline void frexp_sqrt2(Vf x, Vf& m, Vf& e) {
  Mf sub = x < Vf(1.17549435e-38f);  // subnormal: scale into the normal range first
  Vf xs = select(sub, x * Vf(8388608.0f), x);
  uint32x4_t b = vreinterpretq_u32_f32(xs.v);
  int32x4_t ex = vsubq_s32(vreinterpretq_s32_u32(vandq_u32(vshrq_n_u32(b, 23), vdupq_n_u32(0xFF))), vdupq_n_s32(127));
  e = Vf(vcvtq_f32_s32(ex)) - select(sub, Vf(23.0f), Vf(0.0f));
  m = vreinterpretq_f32_u32(vorrq_u32(vandq_u32(b, vdupq_n_u32(0x007FFFFF)), vdupq_n_u32(0x3F800000)));
  Mf big = m > Vf(1.41421356f);
  m = select(big, m * Vf(0.5f), m);
  e = select(big, e + Vf(1.0f), e);
}

inline void widen_add(Vd& acc, Vf v) {
  acc = acc + Vd(vcvt_f64_f32(vget_low_f32(v.v)));
  acc = acc + Vd(vcvt_high_f64_f32(v.v));
}
inline void widen_add(Vd& acc, Vd v) { acc = acc + v; }
inline void stream_fence() {}

FL_NAMESPACE_END

#include "vmath_f32.h"
#include "vec_double_lanes.h"

FL_NAMESPACE_BEGIN
FL_VMATH_F32(Vf)
FL_DOUBLE_LANEWISE(Vd)
FL_NAMESPACE_END
