// pybind11 module fastloss._cuda: launches the CUDA kernels on raw device pointers prepared by
// python/fastloss/_cuda_api.py (which owns validation, allocation and array interop).
// A job is a dict of ints and floats (pointers as ints, 0 for none); every call enqueues work on the
// given stream of the given device and returns without synchronising, with the GIL released.
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>

#include "errors.h"
#include "launch.h"
#include "fastloss_generated/params_parser.h"

namespace py = pybind11;
using namespace fastloss;
using namespace fastloss::cuda;

namespace {

template <class T> T get(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw std::invalid_argument(std::string("fastloss._cuda: job has no '") + key + "'");
  return d[key].cast<T>();
}
template <class T> T* ptr(const py::dict& d, const char* key) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(get<unsigned long long>(d, key)));
}

GradScale grad_scale(const py::dict& j) {
  return GradScale{get<double>(j, "scale_host"), ptr<const double>(j, "scale_numerator"), nullptr,
                   ptr<const void>(j, "row_scale")};
}

Reduction reduction(const py::dict& j) {
  return Reduction{get<int>(j, "reduction"), get<double>(j, "host_denominator"), get<int>(j, "device_denominator"),
                   ptr<void>(j, "total")};
}

// The kernels' small workspaces come from the device's default stream-ordered pool; by default it
// returns memory to the driver at every synchronisation, which would make the next call's
// cudaMallocAsync a driver allocation. Keeping a little cached avoids that.
void keep_workspace_cached(int device) {
  static std::mutex mutex;
  static std::set<int> done;
  std::lock_guard<std::mutex> lock(mutex);
  if (!done.insert(device).second) return;
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
    std::uint64_t keep = std::uint64_t(64) << 20;
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
  }
  cudaGetLastError();
}

// Runs `launch` on `device`, restoring the caller's current device afterwards.
template <class F> void on_device(int device, F launch) {
  int previous = 0;
  cudaGetDevice(&previous);
  if (cudaError_t e = cudaSetDevice(device)) throw std::runtime_error(cudaGetErrorString(e));
  keep_workspace_cached(device);
  const char* error = nullptr;
  {
    py::gil_scoped_release release;
    error = launch();
  }
  cudaSetDevice(previous);
  if (error) throw std::runtime_error(std::string("fastloss CUDA launch failed: ") + error);
}

void rowwise(const py::dict& j) {
  RowwiseArgs a{};
  a.loss_id = get<int>(j, "loss_id");
  a.dtype = DType(get<int>(j, "dtype"));
  a.x = ptr<const void>(j, "x");
  a.grad = ptr<void>(j, "grad");
  a.outer = get<long long>(j, "outer");
  a.classes = get<long long>(j, "classes");
  a.inner = get<long long>(j, "inner");
  a.target = ptr<const long long>(j, "target");
  a.soft_target = ptr<const void>(j, "soft_target");
  a.class_weight = ptr<const void>(j, "class_weight");
  a.params = loss_params_from_dict(a.loss_id, get<py::dict>(j, "params"));
  a.class_weight_fill = class_vector_fill(a.loss_id, a.params);
  a.scale = grad_scale(j);
  a.row_loss = ptr<void>(j, "loss");
  a.errors = device_errors();
  a.allow_cluster = get<int>(j, "allow_cluster");
  a.hess = j.contains("hess") ? ptr<void>(j, "hess") : nullptr;
  const Reduction red = reduction(j);
  auto stream = ptr<CUstream_st>(j, "stream");
  on_device(get<int>(j, "device"), [&] { return a.hess ? run_grad_hess_rowwise(a, stream) : run_rowwise(a, red, stream); });
}

void pointwise(const py::dict& j) {
  PointwiseArgs a{};
  a.loss_id = get<int>(j, "loss_id");
  a.dtype = DType(get<int>(j, "dtype"));
  a.x = ptr<const void>(j, "x");
  a.target = ptr<const void>(j, "target");
  a.grad = ptr<void>(j, "grad");
  a.n = get<long long>(j, "n");
  a.params = loss_params_from_dict(a.loss_id, get<py::dict>(j, "params"));
  a.scale = grad_scale(j);
  a.elem_loss = ptr<void>(j, "loss");
  a.target_lo = get<double>(j, "target_lo");
  a.target_hi = get<double>(j, "target_hi");
  a.target_integral = get<int>(j, "target_integral");
  a.check_target = get<int>(j, "check_target");
  const py::list vectors = get<py::list>(j, "vectors"), periods = get<py::list>(j, "vector_periods");
  if (py::len(vectors) > 2 || py::len(periods) != py::len(vectors))
    throw py::value_error("vectors and vector_periods must be lists of the same length <= 2");
  for (int k = 0; k < 2; ++k) a.vector_fill[k] = fastloss::broadcast_fill(a.loss_id, k, a.params);
  for (size_t k = 0; k < py::len(vectors); ++k) {
    a.vectors[k] = reinterpret_cast<const void*>(static_cast<uintptr_t>(vectors[k].cast<unsigned long long>()));
    a.vector_period[k] = periods[k].cast<long long>();
    if (a.vectors[k] && a.n > 0 && (a.vector_period[k] <= 0 || a.n % a.vector_period[k] != 0))
      throw py::value_error("a per-element vector's period must divide n");
  }
  a.errors = device_errors();
  a.hess = j.contains("hess") ? ptr<void>(j, "hess") : nullptr;
  const Reduction red = reduction(j);
  auto stream = ptr<CUstream_st>(j, "stream");
  on_device(get<int>(j, "device"), [&] { return a.hess ? run_grad_hess_pointwise(a, stream) : run_pointwise(a, red, stream); });
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver / no device is an answer (0), not a sticky error
    return 0;
  }
  return n;
}

py::dict versions() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  py::dict d;
  d["runtime"] = runtime;
  d["driver"] = driver;
  d["architectures"] = FASTLOSS_CUDA_ARCHS;
  return d;
}

py::list device_names() {
  py::list names;
  for (int i = 0, n = device_count(); i < n; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) == cudaSuccess)
      names.append(std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")");
  }
  return names;
}

py::object take_error() {
  int loss_id = -1;
  long long index = -1;
  if (!take_device_error(loss_id, index)) return py::none();
  return py::make_tuple(loss_id, index);
}

void synchronize(int device) {
  on_device(device, [] {
    cudaError_t e = cudaDeviceSynchronize();
    return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
  });
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastloss CUDA kernels (see python/fastloss/_cuda_api.py for the Python side)";
  m.attr("loss_table_signature") = FL_LOSS_TABLE_SIGNATURE;
  m.def("rowwise", &rowwise, py::arg("job"), "Enqueue a row-wise loss job (softmax family, multiclass hinge).");
  m.def("pointwise", &pointwise, py::arg("job"), "Enqueue a point-wise loss job.");
  m.def("device_count", &device_count, "Number of CUDA devices visible (0 without a driver).");
  m.def("device_names", &device_names, "Names and compute capabilities of the visible devices.");
  m.def("versions", &versions, "CUDA runtime/driver versions and the architectures compiled in.");
  m.def("take_error", &take_error,
        "(loss_id, flat index) of a bad target reported by a finished kernel since the last call, else None.");
  m.def("synchronize", &synchronize, py::arg("device"), "cudaDeviceSynchronize on `device`.");
#ifdef FASTLOSS_CUDA_EMULATOR
  // The test build's module: the kernels run on the host CPU (csrc/cuda/emu), host memory standing in
  // for device memory.
  m.attr("emulated") = true;
  m.def("set_emulator_seed", [](unsigned long long seed) { fl_emu::set_seed(seed); }, py::arg("seed"),
        "Seed of the emulator's shuffled thread and block order (default: FASTLOSS_CUDA_EMULATOR_SEED or 0x5eed).");
  m.def("launch_counts", [] {
    const fl_emu::LaunchCounts c = fl_emu::launch_counts();
    return py::make_tuple(c.launches, c.cluster_launches);
  }, "(kernels launched so far, of which thread-block clusters)");
#else
  m.attr("emulated") = false;
#endif
}
