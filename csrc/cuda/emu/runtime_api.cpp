// The CUDA runtime calls of include/cuda_runtime_api.h on the host: one emulated device (an
// "sm_90" with an H100's shared-memory limits, so every launch plan of csrc/cuda is taken),
// host memory as device memory, synchronous streams.
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "include/cuda_runtime_api.h"

namespace fl_emu {

namespace {

constexpr int kSharedOptin = 227 * 1024;
constexpr int kSharedDefault = 48 * 1024;

thread_local cudaError_t t_last = cudaSuccess;
thread_local std::string t_message;

std::mutex g_mutex;
std::map<const void*, int>& max_dynamic() {
  static std::map<const void*, int> m;
  return m;
}

cudaError_t fail(cudaError_t e) {
  t_last = e;
  return e;
}

}  // namespace

cudaError_t launch_failed(cudaError_t e, const char* message) {
  t_message = message;
  t_last = e;
  return e;
}

cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > kSharedOptin)
    return fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_mutex);
  max_dynamic()[kernel] = value;
  return cudaSuccess;
}

cudaError_t func_get_attributes(cudaFuncAttributes* attr, const void* kernel) {
  *attr = cudaFuncAttributes{};
  attr->maxThreadsPerBlock = 1024;
  attr->binaryVersion = 90;  // the emulator compiles every architecture-guarded path (sm_90 included)
  attr->ptxVersion = 90;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = max_dynamic().find(kernel);
  attr->maxDynamicSharedSizeBytes = it == max_dynamic().end() ? kSharedDefault : it->second;
  return cudaSuccess;
}

}  // namespace fl_emu

using fl_emu::launch_failed;

cudaError_t cudaGetLastError() {
  const cudaError_t e = fl_emu::t_last;
  fl_emu::t_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return fl_emu::t_last; }

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return fl_emu::t_message.empty() ? "invalid argument" : fl_emu::t_message.c_str();
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration:
      return fl_emu::t_message.empty() ? "invalid configuration argument" : fl_emu::t_message.c_str();
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return fl_emu::t_message.empty() ? "unspecified launch failure" : fl_emu::t_message.c_str();
  }
  return "unknown error";
}

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : fl_emu::fail(cudaErrorInvalidDevice); }

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return fl_emu::fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = fl_emu::kSharedDefault; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = fl_emu::kSharedOptin; return cudaSuccess;
  }
  return fl_emu::fail(cudaErrorInvalidValue);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fl_emu::fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::strcpy(prop->name, "fastloss CUDA emulator (host CPU)");
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  prop->warpSize = 32;
  prop->sharedMemPerBlock = fl_emu::kSharedDefault;
  prop->sharedMemPerBlockOptin = fl_emu::kSharedOptin;
  prop->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}

// Work runs when it is enqueued: there is never anything to wait for.
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 0;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 0;
  return cudaSuccess;
}

// Fresh device memory holds 0xFF bytes (NaN in every float type): a read before a write shows.
cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  const std::size_t n = (bytes + 255) / 256 * 256;
  *p = std::aligned_alloc(256, n ? n : 256);
  if (*p == nullptr) return fl_emu::fail(cudaErrorMemoryAllocation);
  std::memset(*p, 0xff, n);
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, int, cudaStream_t) {
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** p, std::size_t bytes, unsigned) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeHost(void* p) { return cudaFree(p); }
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned) {
  *device = host;  // one address space
  return cudaSuccess;
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (device != 0) return fl_emu::fail(cudaErrorInvalidDevice);
  *pool = nullptr;
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void*) { return cudaSuccess; }
