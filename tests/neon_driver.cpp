// Runs the C ABI of the CPU kernels (fastloss_rowwise / fastloss_pointwise, csrc/fastloss/kernels.h)
// on the cases in a file written by tests/test_neon_qemu.py, on one ISA, and writes every output.
// Cross-compiled for aarch64 and run under qemu-aarch64 there: no Python on that side.
//
//   neon_driver ISA THREADS IN OUT
//   neon_driver vmath ISA IN OUT   (the vector math hook, csrc/cpu/vector_math_hook.h)
//
// IN: int64 count, then per case: int64 kind (0 rowwise, 1 pointwise), loss_id, dtype, outer,
// classes, inner (pointwise: n, 1, 1), flags (FLAG_*), double grad_scale, int64 param count and per
// param (blob name, double value, converted to the LossParams field's type), then blobs (int64 size, bytes): x, target, weight if
// FLAG_WEIGHT, row_scale if FLAG_ROW_SCALE. OUT: per case int64 rc, double total, blob error text,
// blob loss_out, blob grad_out (empty when not asked for). All little-endian, as both ends are.
// vmath IN: int64 function id, dtype (FL_FLOAT32 / FL_FLOAT64), n, operand count k, then k arrays
// of n values; OUT: the n results.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.h"
#include "vector_math_hook.h"

#ifndef FL_PARAM_FIELDS
#error "compile with -DFL_PARAM_FIELDS='X(field) X(field) ...': the LossParams keys the Python side sends"
#endif

using namespace fastloss;

namespace {

enum : int64_t {
  FLAG_SOFT = 1, FLAG_WEIGHT = 2, FLAG_ROW_SCALE = 4, FLAG_LOSS_OUT = 8, FLAG_GRAD_OUT = 16,
  FLAG_IN_PLACE = 32, FLAG_NEED_LOSS = 64,
};

struct Reader {
  FILE* f;
  template <class T> T get() {
    T v;
    if (std::fread(&v, sizeof v, 1, f) != 1) throw std::runtime_error("truncated input");
    return v;
  }
  std::vector<char> blob() {
    std::vector<char> b(size_t(get<int64_t>()));
    if (!b.empty() && std::fread(b.data(), 1, b.size(), f) != b.size()) throw std::runtime_error("truncated input");
    return b;
  }
};

struct Writer {
  FILE* f;
  template <class T> void put(T v) { std::fwrite(&v, sizeof v, 1, f); }
  void blob(const void* p, size_t n) {
    put<int64_t>(int64_t(n));
    if (n) std::fwrite(p, 1, n, f);
  }
};

size_t math_size(int64_t dtype) { return dtype == FL_FLOAT64 ? 8 : 4; }

LossParams read_params(Reader& in) {
  LossParams p{};
  const int64_t count = in.get<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    std::vector<char> name = in.blob();
    const double value = in.get<double>();
    const std::string key(name.begin(), name.end());
    bool found = false;
#define X(f)                                      \
  if (key == #f) {                                \
    p.f = static_cast<decltype(p.f)>(value);      \
    found = true;                                 \
  }
    FL_PARAM_FIELDS
#undef X
    if (!found) throw std::runtime_error("unknown LossParams field " + key);
  }
  return p;
}

void run_case(Reader& in, Writer& out) {
  const int64_t kind = in.get<int64_t>(), loss_id = in.get<int64_t>(), dtype = in.get<int64_t>();
  const int64_t outer = in.get<int64_t>(), classes = in.get<int64_t>(), inner = in.get<int64_t>();
  const int64_t flags = in.get<int64_t>();
  const double grad_scale = in.get<double>();
  const LossParams params = read_params(in);
  std::vector<char> x = in.blob(), target = in.blob(), weight, row_scale;
  if (flags & FLAG_WEIGHT) weight = in.blob();
  if (flags & FLAG_ROW_SCALE) row_scale = in.blob();

  const int64_t rows = kind == 0 ? outer * inner : outer;
  std::vector<char> loss_out(flags & FLAG_LOSS_OUT ? size_t(rows) * math_size(dtype) : 0);
  std::vector<char> grad_copy;  // in place: the gradient overwrites a copy of x
  void* grad_out = nullptr;
  if (flags & FLAG_IN_PLACE) {
    grad_copy = x;
    grad_out = grad_copy.data();
  } else if (flags & FLAG_GRAD_OUT) {
    grad_copy.assign(x.size(), 0);
    grad_out = grad_copy.data();
  }
  const void* xp = flags & FLAG_IN_PLACE ? grad_out : x.data();
  double total = 0;
  char error[256] = {0};
  int rc;
  if (kind == 0) {
    FlRowwiseArgs a{};
    a.loss_id = int(loss_id);
    a.dtype = int(dtype);
    a.outer = outer;
    a.classes = classes;
    a.inner = inner;
    a.x = xp;
    if (flags & FLAG_SOFT) a.soft_target = target.data();
    else a.target = reinterpret_cast<const int64_t*>(target.data());
    a.weight = weight.empty() ? nullptr : reinterpret_cast<const double*>(weight.data());
    a.params = params;
    a.row_scale = row_scale.empty() ? nullptr : row_scale.data();
    a.grad_scale = grad_scale;
    a.loss_out = loss_out.empty() ? nullptr : loss_out.data();
    a.grad_out = grad_out;
    a.need_loss = (flags & FLAG_NEED_LOSS) != 0;
    rc = fastloss_rowwise(&a, &total, error, sizeof error);
  } else {
    FlPointwiseArgs a{};
    a.loss_id = int(loss_id);
    a.dtype = int(dtype);
    a.n = outer;
    a.x = xp;
    a.target = target.data();
    a.params = params;
    a.row_scale = row_scale.empty() ? nullptr : row_scale.data();
    a.grad_scale = grad_scale;
    a.loss_out = loss_out.empty() ? nullptr : loss_out.data();
    a.grad_out = grad_out;
    a.need_loss = (flags & FLAG_NEED_LOSS) != 0;
    rc = fastloss_pointwise(&a, &total, error, sizeof error);
  }
  out.put<int64_t>(rc);
  out.put<double>(total);
  out.blob(error, std::strlen(error));
  out.blob(loss_out.data(), loss_out.size());
  out.blob(grad_copy.data(), grad_out ? grad_copy.size() : 0);
}

int run_vmath(const char* isa_name, const char* in_path, const char* out_path) {
  set_isa(isa_name);
  FILE* fi = std::fopen(in_path, "rb");
  FILE* fo = std::fopen(out_path, "wb");
  if (!fi || !fo) throw std::runtime_error("cannot open the input or output file");
  Reader in{fi};
  const int64_t f = in.get<int64_t>(), dtype = in.get<int64_t>(), n = in.get<int64_t>(), k = in.get<int64_t>();
  const size_t bytes = size_t(n) * math_size(dtype);
  std::vector<std::vector<char>> ops(3);
  for (int64_t i = 0; i < k; ++i) {
    ops[i].resize(bytes);
    if (bytes && std::fread(ops[i].data(), 1, bytes, fi) != bytes) throw std::runtime_error("truncated input");
  }
  std::vector<char> out(bytes);
  auto op = [&](int i) -> const void* { return ops[i].empty() ? nullptr : ops[i].data(); };
  vector_math(int(f), int(dtype), op(0), op(1), op(2), out.data(), n);
  std::fwrite(out.data(), 1, out.size(), fo);
  std::fclose(fi);
  return std::fclose(fo) != 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "vmath") {
    try {
      return run_vmath(argv[2], argv[3], argv[4]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "neon_driver: %s\n", e.what());
      return 1;
    }
  }
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s ISA THREADS IN OUT\n", argv[0]);
    return 2;
  }
  try {
    set_isa(argv[1]);
    set_num_threads(std::stoi(argv[2]));
    std::printf("isa %s, %d threads\n", current_isa(), get_num_threads());
    FILE* fi = std::fopen(argv[3], "rb");
    FILE* fo = std::fopen(argv[4], "wb");
    if (!fi || !fo) throw std::runtime_error("cannot open the input or output file");
    Reader in{fi};
    Writer out{fo};
    const int64_t count = in.get<int64_t>();
    for (int64_t i = 0; i < count; ++i) run_case(in, out);
    std::fclose(fi);
    if (std::fclose(fo) != 0) throw std::runtime_error("cannot write the output file");
    std::printf("%lld cases\n", (long long)count);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "neon_driver: %s\n", e.what());
    return 1;
  }
  return 0;
}
