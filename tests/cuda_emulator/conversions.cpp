// Reads float32 values (stdin), writes the emulator's __half and __nv_bfloat16 of each and their
// float values (stdout): tests/test_cuda_emulator.py compares them with NumPy and ml_dtypes.
#include <cstdio>

#include "cuda_bf16.h"

int main() {
  float f;
  while (std::fread(&f, 4, 1, stdin) == 1) {
    const __half h = __float2half_rn(f);
    const __nv_bfloat16 b = __float2bfloat16_rn(f);
    const float hf = __half2float(h), bf = __bfloat162float(b);
    std::fwrite(&h.bits, 2, 1, stdout);
    std::fwrite(&b.bits, 2, 1, stdout);
    std::fwrite(&hf, 4, 1, stdout);
    std::fwrite(&bf, 4, 1, stdout);
  }
}
