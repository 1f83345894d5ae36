#include "errors.h"

#include <cuda_runtime_api.h>

namespace fastloss::cuda {

namespace {

struct MappedErrors {
  DeviceErrors* host = nullptr;
  DeviceErrors* device = nullptr;
  MappedErrors() {
    void* h = nullptr;
    if (cudaHostAlloc(&h, sizeof(DeviceErrors), cudaHostAllocMapped | cudaHostAllocPortable) != cudaSuccess) {
      cudaGetLastError();  // a failed allocation must not look like the next launch's error
      return;
    }
    host = static_cast<DeviceErrors*>(h);
    host->flag = 0;
    host->loss_id = -1;
    host->index = -1;
    void* d = nullptr;
    if (cudaHostGetDevicePointer(&d, h, 0) == cudaSuccess) device = static_cast<DeviceErrors*>(d);
    else cudaGetLastError();
  }
};

MappedErrors& mapped() {
  static MappedErrors errors;  // thread-safe one-time initialisation
  return errors;
}

}  // namespace

DeviceErrors* device_errors() { return mapped().device; }

bool take_device_error(int& loss_id, long long& index) {
  DeviceErrors* e = mapped().host;
  if (e == nullptr || e->flag == 0) return false;
  loss_id = e->loss_id;
  index = e->index;
  e->flag = 0;
  return true;
}

}  // namespace fastloss::cuda
