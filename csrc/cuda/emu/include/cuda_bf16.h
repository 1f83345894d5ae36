// __nv_bfloat16 of cuda_bf16.h as the kernels use it: storage plus round-to-nearest-even
// conversions (test build only; see ../README.md).
#pragma once

#include <cstdint>
#include <cstring>

#include "cuda_fp16.h"

struct __nv_bfloat16 {
  std::uint16_t bits;  // the high half of an IEEE binary32
};

inline float __bfloat162float(__nv_bfloat16 h) { return fl_emu::float_of_bits(std::uint32_t(h.bits) << 16); }

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  std::uint32_t x = fl_emu::bits_of_float(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{std::uint16_t((x >> 16) | 0x40u)};  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return __nv_bfloat16{std::uint16_t(x >> 16)};
}
