// Storage types of 16-bit inputs and their scalar conversions to and from float.
// f16 / bf16 are distinct types over the raw bits so that loads and stores overload on them.
// float -> 16 bit rounds to nearest even; NaN stays NaN (bfloat16 NaN is 0x7FC0 with the sign
// kept, as the reference's rounding produces a quiet NaN).
#pragma once

#include <cstdint>
#include <cstring>

#include "../../fastloss/math_ops.h"

namespace fastloss {
struct f16 { std::uint16_t bits; };
struct bf16 { std::uint16_t bits; };
}  // namespace fastloss

FL_NAMESPACE_BEGIN

inline float bits_to_float(std::uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline std::uint32_t float_to_bits(float f) { std::uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float to_float(bf16 h) { return bits_to_float(std::uint32_t(h.bits) << 16); }

inline bf16 to_bf16(float f) {
  std::uint32_t u = float_to_bits(f);
  if (f != f) return bf16{std::uint16_t((u >> 16) | 0x40)};
  u += 0x7FFF + ((u >> 16) & 1);
  return bf16{std::uint16_t(u >> 16)};
}

inline float to_float(f16 h) {
  std::uint32_t sign = std::uint32_t(h.bits & 0x8000) << 16, ex = (h.bits >> 10) & 0x1F, man = h.bits & 0x3FF;
  if (ex == 0x1F) return bits_to_float(sign | 0x7F800000 | (man << 13));
  if (ex == 0) {  // zero or subnormal: man * 2^-24, exact in float
    float v = float(man) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_to_float(sign | ((ex + 112) << 23) | (man << 13));
}

inline f16 to_f16(float f) {
  std::uint32_t u = float_to_bits(f), sign = (u >> 16) & 0x8000, a = u & 0x7FFFFFFF;
  if (a > 0x7F800000) return f16{std::uint16_t(sign | 0x7E00 | ((a >> 13) & 0x3FF))};
  if (a >= 0x477FF000) return f16{std::uint16_t(sign | 0x7C00)};  // rounds to >= 65520: inf
  if (a < 0x38800000) {  // below 2^-14: subnormal half, spacing 2^-24; float rint is RNE
    float v = bits_to_float(a) * 16777216.0f;  // exact scaling by 2^24
    float r = v + 8388608.0f - 8388608.0f;     // round to an integer, ties to even
    return f16{std::uint16_t(sign | std::uint32_t(r))};
  }
  std::uint32_t m = a + 0xFFF + ((a >> 13) & 1);  // round the 13 dropped bits to nearest even
  return f16{std::uint16_t(sign | ((m - 0x38000000) >> 13))};
}

inline float to_float(float f) { return f; }
inline double to_float(double d) { return d; }

// Storage -> math type and back, for scalar (tail) elements. NumPy arrays need not be aligned to
// their element size (np.frombuffer at an odd offset), so every element goes through memcpy: one
// plain (unaligned-tolerant) move once optimised, and never a misaligned typed access.
template <class T> inline T load_raw(const T* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <class T> inline void store_raw(T* p, T v) { std::memcpy(p, &v, sizeof(T)); }
template <class S> inline S load_scalar(const float* p) { return S(load_raw(p)); }
template <class S> inline S load_scalar(const double* p) { return S(load_raw(p)); }
template <class S> inline S load_scalar(const f16* p) { return S(to_float(load_raw(p))); }
template <class S> inline S load_scalar(const bf16* p) { return S(to_float(load_raw(p))); }
inline void store_scalar(float* p, float v) { store_raw(p, v); }
inline void store_scalar(double* p, double v) { store_raw(p, v); }
inline void store_scalar(f16* p, float v) { store_raw(p, to_f16(v)); }
inline void store_scalar(bf16* p, float v) { store_raw(p, to_bf16(v)); }

FL_NAMESPACE_END
