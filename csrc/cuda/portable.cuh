// The two CUDA constructs whose spelling differs between nvcc and the host emulator of the test
// build (emu/, FASTLOSS_CUDA_EMULATOR): kernel launches and shared-memory declarations. Every
// kernel launch goes through launch_kernel, so `<<<...>>>` appears here only.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#ifndef FASTLOSS_CUDA_EMULATOR
#define FL_SHARED_ARRAY(T, name, n) __shared__ T name[n]
#define FL_SHARED_VAR(T, name) __shared__ T name
#define FL_DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) T name[]
#endif

namespace fastloss::cuda {

// kernel<<<grid, block, smem, stream>>>(args...); returns the launch's error (cudaGetLastError).
template <class... Params, class... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                          Args&&... args) {
#ifdef FASTLOSS_CUDA_EMULATOR
  (void)stream;  // the emulator runs a launch when it is enqueued: stream order holds
  return fl_emu::launch(kernel, grid, block, smem, dim3(1, 1, 1), std::forward<Args>(args)...);
#else
  kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
  return cudaGetLastError();
#endif
}

}  // namespace fastloss::cuda
