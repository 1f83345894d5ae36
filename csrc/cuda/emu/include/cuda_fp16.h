// __half of cuda_fp16.h as the kernels use it: storage plus round-to-nearest-even conversions
// (test build only; see ../README.md).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../emulator.h"

struct __half {
  std::uint16_t bits;  // IEEE binary16
};

namespace fl_emu {
inline float float_of_bits(std::uint32_t x) {
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
inline std::uint32_t bits_of_float(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  return x;
}
}  // namespace fl_emu

inline float __half2float(__half h) {
  const std::uint32_t sign = std::uint32_t(h.bits & 0x8000u) << 16;
  const std::uint32_t exp = (h.bits >> 10) & 0x1fu, man = h.bits & 0x3ffu;
  if (exp == 0) return fl_emu::float_of_bits(sign | fl_emu::bits_of_float(std::ldexp(float(man), -24)));  // exact
  if (exp == 31) return fl_emu::float_of_bits(sign | 0x7f800000u | (man << 13));
  return fl_emu::float_of_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

inline __half __float2half_rn(float f) {
  const std::uint32_t x = fl_emu::bits_of_float(f);
  const std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return __half{std::uint16_t(sign | 0x7e00u)};  // NaN (quiet)
  if (ax >= 0x477ff000u) return __half{std::uint16_t(sign | 0x7c00u)};  // >= 65520 rounds to inf
  if (ax < 0x38800000u) {  // below 2^-14: a subnormal half (or 0); |f| * 2^24 is exact, rint is RNE
    return __half{std::uint16_t(sign | std::uint16_t(std::nearbyint(fl_emu::float_of_bits(ax) * 16777216.0f)))};
  }
  const std::uint32_t v = ax - 0x38000000u;  // rebias the exponent 127 -> 15
  std::uint32_t r = v >> 13;
  const std::uint32_t rem = v & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // a carry into the exponent is right
  return __half{std::uint16_t(sign | r)};
}
