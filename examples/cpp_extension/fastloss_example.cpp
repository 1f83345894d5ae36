// A separate pybind11 extension built against fastloss's installed headers, showing both C++
// entry points (build: see CMakeLists.txt or README.md next to this file):
//   huber_loss        a per-element scalar math header (fastloss/losses/huber_loss.h) used directly,
//                     here in a plain loop; the same formula the SIMD and CUDA kernels run.
//   cross_entropy     fastloss's dispatched, multi-threaded CPU kernel, reached through the
//                     function table that fastloss._C exports as a PyCapsule (fastloss/kernels.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include <fastloss/losses/huber_loss.h>
#include <fastloss/kernels.h>

namespace py = pybind11;

namespace {

using F64Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

// (loss, d loss / d x) per element, float64.
py::tuple huber_loss(const F64Array& x, const F64Array& y, double delta) {
  if (x.size() != y.size()) throw py::value_error("x and y must have the same size");
  fastloss::LossParams params{};
  params.delta = delta;
  const fastloss::HuberConsts<double> consts(params);
  F64Array loss(x.size()), grad(x.size());
  const double* xp = x.data();
  const double* yp = y.data();
  double* lp = loss.mutable_data();
  double* gp = grad.mutable_data();
  for (py::ssize_t i = 0; i < x.size(); ++i) {
    const fastloss::LossGrad<double> r = fastloss::huber_loss_and_grad(xp[i], yp[i], consts);
    lp[i] = r.loss;
    gp[i] = r.grad;
  }
  return py::make_tuple(loss, grad);
}

const fastloss::FlKernelTable& kernel_table() {
  // Imports fastloss._C on first use; the table lives as long as that module.
  static const auto* table =
      static_cast<const fastloss::FlKernelTable*>(PyCapsule_Import(FL_KERNEL_TABLE_CAPSULE, 0));
  if (table == nullptr) throw py::error_already_set();
  if (table->abi_version != FL_KERNEL_ABI_VERSION)
    throw std::runtime_error("fastloss kernel ABI " + std::to_string(table->abi_version) + ", built for " +
                             std::to_string(FL_KERNEL_ABI_VERSION));
  return *table;
}

// Per-row losses (N,) and the gradient of their mean (N, C), float32 logits, class axis last.
py::tuple cross_entropy(py::array_t<float, py::array::c_style | py::array::forcecast> logits,
                        py::array_t<int64_t, py::array::c_style | py::array::forcecast> target,
                        double label_smoothing) {
  if (logits.ndim() != 2 || target.ndim() != 1 || target.shape(0) != logits.shape(0))
    throw py::value_error("logits must be (N, C) and target (N,)");
  const int64_t n = logits.shape(0), classes = logits.shape(1);
  py::array_t<float> loss(n), grad({n, classes});
  fastloss::FlRowwiseArgs args{};
  args.loss_id = fastloss::LOSS_cross_entropy;
  args.dtype = fastloss::FL_FLOAT32;
  args.outer = n;
  args.classes = classes;
  args.inner = 1;
  args.x = logits.data();
  args.target = target.data();
  args.params.ignore_index = -100;
  args.params.label_smoothing = label_smoothing;
  args.grad_scale = 1.0 / double(n);  // "mean" over rows without class weights or ignored rows
  args.loss_out = loss.mutable_data();
  args.grad_out = grad.mutable_data();
  args.need_loss = 1;
  double total = 0.0;
  char error[256] = "";
  const fastloss::FlKernelTable& table = kernel_table();  // may import fastloss._C: needs the GIL
  int status;
  {
    py::gil_scoped_release release;  // the kernel never touches Python
    status = table.rowwise(&args, &total, error, sizeof error);
  }
  if (status != 0) throw py::value_error(error);
  return py::make_tuple(loss, grad);
}

}  // namespace

PYBIND11_MODULE(fastloss_example, m) {
  m.doc() = "A third-party extension calling fastloss's C++ math headers and CPU kernels";
  m.def("huber_loss", &huber_loss, py::arg("x"), py::arg("y"), py::arg("delta") = 1.0);
  m.def("cross_entropy", &cross_entropy, py::arg("logits"), py::arg("target"), py::arg("label_smoothing") = 0.0);
  m.def("isa", [] { return std::string(kernel_table().isa()); });
}
