// fastloss._C: the CPU kernels for python/fastloss/_backends.py (NativeBackend). Checks every
// array it is given (dtype, shape, contiguity, writability) so that bad arguments raise
// ValueError instead of crashing, then runs the kernel with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>

#include "../cpu/workspace.h"
#include "sigint_watch.h"

#include "../cpu/dispatch.h"
#include "../cpu/vector_math_hook.h"
#include "../fastloss/kernels.h"
#include "fastloss_generated/params_parser.h"

namespace py = pybind11;
using namespace fastloss;

namespace {

#define FL_CHECK(cond, msg) \
  if (!(cond)) throw py::value_error(msg)

// The dtype code: the position in _spec.DTYPES (FlDtype).
FlDtype dtype_of(int code) {
  FL_CHECK(code >= 0 && code < FL_DTYPE_COUNT, "dtype must be a code in [0, " + std::to_string(FL_DTYPE_COUNT) + ")");
  return static_cast<FlDtype>(code);
}

// The NumPy storage of each FlDtype: bfloat16 travels as uint16 bits.
py::dtype storage_dtype(FlDtype d) {
  switch (d) {
    case FL_FLOAT64: return py::dtype::of<double>();
    case FL_FLOAT16: return py::dtype("float16");
    case FL_BFLOAT16: return py::dtype::of<uint16_t>();
    default: return py::dtype::of<float>();
  }
}

py::dtype math_dtype(FlDtype d) { return d == FL_FLOAT64 ? py::dtype::of<double>() : py::dtype::of<float>(); }

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += std::to_string(a.shape(i)) + (i + 1 < a.ndim() ? ", " : "");
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// obj as an array of exactly `dtype` and `shape`, C-contiguous (and writable if asked).
py::array checked(const py::handle& obj, const char* name, const py::dtype& dtype, const std::vector<py::ssize_t>& shape,
                  bool writable) {
  FL_CHECK(py::isinstance<py::array>(obj), std::string(name) + " must be a NumPy array");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  FL_CHECK(a.dtype().is(dtype) || a.dtype().equal(dtype),
           std::string(name) + " must have dtype " + std::string(py::str(dtype)) + ", got " + std::string(py::str(a.dtype())));
  bool same = a.ndim() == py::ssize_t(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = a.shape(i) == shape[i];
  FL_CHECK(same, std::string(name) + " has the wrong shape " + shape_str(a));
  FL_CHECK(a.flags() & py::array::c_style, std::string(name) + " must be C-contiguous");
  FL_CHECK(!writable || a.writeable(), std::string(name) + " must be writable");
  return a;
}

// Raised (as fastloss._C.TargetOutOfDomain, a ValueError) when a float target is outside the
// loss's domain; the front end then names the offending value.
struct TargetOutOfDomain : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double run_or_raise(int rc, double total, const char* error) {
  if (rc == FL_TARGET_OUT_OF_DOMAIN) throw TargetOutOfDomain(error);
  if (rc != 0) throw py::value_error(error);
  return total;
}

// The arguments both kernels share (scales, outputs), then the kernel itself with the GIL released.
template <class Args>
double run_kernel(int (*kernel)(const Args*, double*, char*, size_t), Args& a, FlDtype dt, const py::array& x,
                  const std::vector<py::ssize_t>& loss_shape, const py::object& row_scale, double grad_scale,
                  const py::object& loss_out, const py::object& grad_out, bool need_loss, const py::object& hess_out) {
  const std::vector<py::ssize_t> xshape(x.shape(), x.shape() + x.ndim());
  if (!hess_out.is_none()) a.hess_out = checked(hess_out, "hess_out", storage_dtype(dt), xshape, true).mutable_data();
  if (!row_scale.is_none()) a.row_scale = checked(row_scale, "row_scale", math_dtype(dt), loss_shape, false).data();
  if (!loss_out.is_none()) a.loss_out = checked(loss_out, "loss_out", math_dtype(dt), loss_shape, true).mutable_data();
  if (!grad_out.is_none()) a.grad_out = checked(grad_out, "grad_out", storage_dtype(dt), xshape, true).mutable_data();
  a.grad_scale = grad_scale;
  a.need_loss = need_loss;
  double total = 0;
  char error[256] = {0};
  int rc;
  {
    SigintWatch watch(x.size());  // Ctrl-C during a long call: KeyboardInterrupt, see sigint_watch.h
    {
      py::gil_scoped_release release;
      rc = kernel(&a, &total, error, sizeof error);
    }
    watch.raise_if_interrupted();
  }
  return run_or_raise(rc, total, error);
}

py::tuple rowwise(int loss_id, const py::object& x_obj, int dtype, const py::object& target,
                  const py::object& weight, const py::dict& params, const py::object& row_scale, double grad_scale,
                  const py::object& loss_out, const py::object& grad_out, bool need_loss, bool divide_by_valid_rows,
                  const py::object& hess_out) {
  const FlDtype dt = dtype_of(dtype);
  FL_CHECK(py::isinstance<py::array>(x_obj), "x must be a NumPy array");
  py::array x0 = py::reinterpret_borrow<py::array>(x_obj);
  FL_CHECK(x0.ndim() == 3, "x must be 3-D (outer, C, inner), got shape " + shape_str(x0));
  const std::vector<py::ssize_t> xshape{x0.shape(0), x0.shape(1), x0.shape(2)}, rows{x0.shape(0), x0.shape(2)};
  py::array x = checked(x0, "x", storage_dtype(dt), xshape, false);
  FlRowwiseArgs a{};
  a.loss_id = loss_id;
  a.dtype = dt;
  a.outer = xshape[0];
  a.classes = xshape[1];
  a.inner = xshape[2];
  a.x = x.data();
  a.params = loss_params_from_dict(loss_id, params);
  // Class indices travel as int64; float targets of x's shape are probabilities (soft targets).
  const bool soft = py::isinstance<py::array>(target) &&
                    !py::reinterpret_borrow<py::array>(target).dtype().equal(py::dtype::of<int64_t>());
  if (soft) a.soft_target = checked(target, "target", storage_dtype(dt), xshape, false).data();
  else a.target = static_cast<const int64_t*>(checked(target, "target", py::dtype::of<int64_t>(), rows, false).data());
  if (!weight.is_none()) a.weight = static_cast<const double*>(
      checked(weight, "weight", py::dtype::of<double>(), {a.classes}, false).data());
  int64_t valid_rows = a.outer * a.inner;
  a.valid_rows = &valid_rows;
  a.divide_by_valid_rows = divide_by_valid_rows;
  const double total = run_kernel(fastloss_rowwise, a, dt, x, rows, row_scale, grad_scale, loss_out, grad_out,
                                  need_loss, hess_out);
  return py::make_tuple(total, valid_rows);
}

double pointwise(int loss_id, const py::object& x_obj, int dtype, const py::object& target,
                 const py::object& weight, const py::dict& params, const py::object& row_scale, double grad_scale,
                 const py::object& loss_out, const py::object& grad_out, bool need_loss, const py::object& hess_out) {
  const FlDtype dt = dtype_of(dtype);
  FL_CHECK(py::isinstance<py::array>(x_obj), "x must be a NumPy array");
  py::array x0 = py::reinterpret_borrow<py::array>(x_obj);
  FL_CHECK(x0.ndim() == 1, "x must be 1-D, got shape " + shape_str(x0));
  const std::vector<py::ssize_t> shape{x0.shape(0)};
  py::array x = checked(x0, "x", storage_dtype(dt), shape, false);
  FlPointwiseArgs a{};
  a.loss_id = loss_id;
  a.dtype = dt;
  a.n = shape[0];
  a.x = x.data();
  a.target = checked(target, "target", storage_dtype(dt), shape, false).data();
  a.params = loss_params_from_dict(loss_id, params);
  // `weight`: None or a sequence of the loss's per-element vectors (None or 1-D of the math type),
  // each of a length that divides n (n: the input's shape, C: along its last axis).
  if (!weight.is_none()) {
    const py::sequence vectors = weight.cast<py::sequence>();
    FL_CHECK(vectors.size() <= FL_MAX_VECTORS, "too many per-element vectors");
    for (size_t k = 0; k < vectors.size(); ++k) {
      const py::object v = vectors[k];
      if (v.is_none()) continue;
      FL_CHECK(py::isinstance<py::array>(v), "a per-element vector must be a NumPy array");
      const py::array arr = py::reinterpret_borrow<py::array>(v);
      FL_CHECK(arr.ndim() == 1, "a per-element vector must be 1-D");
      a.vector_period[k] = arr.shape(0);
      a.vectors[k] = checked(v, "vector", math_dtype(dt), {arr.shape(0)}, false).data();
    }
  }
  return run_kernel(fastloss_pointwise, a, dt, x, shape, row_scale, grad_scale, loss_out, grad_out, need_loss, hess_out);
}

std::string isa_name() {
  try {
    return current_isa();
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastloss CPU kernels (SIMD, OpenMP); see python/fastloss/_backends.py and csrc/fastloss/kernels.h";
  const char* kernel_doc =
      "(loss_id, x, dtype, target, weight, params, row_scale, grad_scale, loss_out, grad_out, need_loss, hess_out=None) "
      "-> sum of the unreduced losses; writes loss_out / grad_out (grad_out may be x) and, for the grad_hess form, "
      "hess_out (then no loss). Raises ValueError on bad input.";
  py::register_exception<TargetOutOfDomain>(m, "TargetOutOfDomain", PyExc_ValueError);
  const auto kernel_args = [] {
    return std::make_tuple(py::arg("loss_id"), py::arg("x"), py::arg("dtype"), py::arg("target"), py::arg("weight"),
                           py::arg("params"), py::arg("row_scale"), py::arg("grad_scale"), py::arg("loss_out"),
                           py::arg("grad_out"), py::arg("need_loss"));
  };
  std::apply([&](auto... args) {
    m.def("rowwise", &rowwise,
          "(loss_id, x, dtype, target, weight, params, row_scale, grad_scale, loss_out, grad_out, need_loss, "
          "divide_by_valid_rows=False, hess_out=None) -> (sum of the unreduced losses, rows whose target is not "
          "ignore_index); divide_by_valid_rows divides grad_scale by that count first; hess_out as pointwise.",
          args..., py::arg("divide_by_valid_rows") = false, py::arg("hess_out") = py::none());
  }, kernel_args());
  std::apply([&](auto... args) { m.def("pointwise", &pointwise, kernel_doc, args..., py::arg("hess_out") = py::none()); },
             kernel_args());
  m.def("isa", &isa_name, "The instruction set in use.");
  m.def("available_isas", &available_isas, "Instruction sets this CPU and build can run, best first.");
  m.def("set_isa", [](const std::string& name) {
    try {
      set_isa(name);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }, "Switch the instruction set (tests run every available one).");
  m.def("set_num_threads", [](int n) {
    FL_CHECK(n >= 1, "num_threads must be a positive integer");
    set_num_threads(n);
  });
  m.def("get_num_threads", &get_num_threads);
  m.def("_vector_math", [](const std::string& fn, const py::array& a, const py::object& b, const py::object& c) {
    static const char* const names[] = {
#define FL_VM_NAME(name, arity, expr) #name,
        FL_VECTOR_MATH_FUNCTIONS(FL_VM_NAME)
#undef FL_VM_NAME
    };
    static const int arities[] = {
#define FL_VM_ARITY(name, arity, expr) arity,
        FL_VECTOR_MATH_FUNCTIONS(FL_VM_ARITY)
#undef FL_VM_ARITY
    };
    int f = -1;
    for (int i = 0; i < FL_VM_COUNT; ++i)
      if (fn == names[i]) f = i;
    FL_CHECK(f >= 0, "function '" + fn + "' is not in the vector math vocabulary (csrc/cpu/vector_math_hook.h)");
    const bool f64 = a.dtype().is(py::dtype::of<double>());
    FL_CHECK(f64 || a.dtype().is(py::dtype::of<float>()), "a must be float32 or float64");
    FL_CHECK(b.is_none() == (arities[f] < 2) && c.is_none() == (arities[f] < 3),
             fn + " takes " + std::to_string(arities[f]) + " operand(s)");
    auto operand = [&](const py::object& o) -> py::array {
      if (o.is_none()) return py::array();
      py::array arr = f64 ? py::array(py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(o))
                          : py::array(py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(o));
      FL_CHECK(arr.size() == a.size(), "operands must have the same size");
      return arr;
    };
    const py::array xa = operand(a), xb = operand(b), xc = operand(c);
    py::array out = f64 ? py::array(py::array_t<double>(a.size())) : py::array(py::array_t<float>(a.size()));
    vector_math(f, f64 ? FL_FLOAT64 : FL_FLOAT32, xa.data(), b.is_none() ? nullptr : xb.data(),
                c.is_none() ? nullptr : xc.data(), out.mutable_data(), a.size());
    return out;
  }, py::arg("fn"), py::arg("a"), py::arg("b") = py::none(), py::arg("c") = py::none(),
  "Test hook: the current ISA's vector math (csrc/cpu/vector_math_hook.h) elementwise, float32 or float64 "
  "(select(a > 0, b, c)).");
  m.attr("loss_table_signature") = FL_LOSS_TABLE_SIGNATURE;
  SigintWatch::init();
  m.attr("_kernel_table") = py::capsule(static_cast<const void*>(&kernel_table), FL_KERNEL_TABLE_CAPSULE);
}
