// A small host program over the CUDA kernels under the emulator, for tests/test_cuda_emulator.py:
//   driver rows     cross_entropy through every row plan (strided, warp per row, block per row,
//                   thread-block cluster, split rows), checked against a float64 reference here;
//                   exit 0 when all agree, 1 when a value differs, 2 when a launch fails
//   driver <bad>    a deliberately wrong kernel that the emulator must refuse (exit 2, message)
// It includes the kernel sources from the directory given at compile time (-I), so the test can
// build it over a mutated copy of csrc/cuda.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "rowwise.cuh"

using namespace fastloss;
using namespace fastloss::cuda;

namespace {

int check_rows(long long outer, long long C, long long inner, bool cluster) {
  const long long rows = outer * inner, n = rows * C;
  std::vector<float> x(n);
  std::vector<long long> t(rows);
  unsigned s = 12345u + unsigned(C);
  auto uniform = [&] { s = s * 1664525u + 1013904223u; return (s >> 8) * (1.0 / 16777216.0); };
  for (float& v : x) v = float(6.0 * uniform() - 3.0);
  for (long long& v : t) v = (long long)(uniform() * double(C)) % C;
  // One guard element after each output: a write past the end shows.
  std::vector<float> grad(n + 1, NAN), loss(rows + 1, NAN);
  grad[n] = loss[rows] = 12345.0f;
  RowwiseArgs a{};
  a.loss_id = LOSS_cross_entropy;
  a.dtype = FL_FLOAT32;
  a.x = x.data();
  a.grad = grad.data();
  a.outer = outer;
  a.classes = C;
  a.inner = inner;
  a.target = t.data();
  a.params.ignore_index = -100;
  a.class_weight_fill = 1.0;
  a.scale.host = 1.0;
  a.row_loss = loss.data();
  a.allow_cluster = cluster;
  const unsigned long long clusters = fl_emu::launch_counts().cluster_launches;
  if (cudaError_t e = launch_rowwise<float>(a, nullptr)) {
    std::printf("launch failed: %s\n", cudaGetErrorString(e));
    return 2;
  }
  if (grad[n] != 12345.0f || loss[rows] != 12345.0f) {
    std::printf("(%lld, %lld, %lld): a kernel wrote past the end of its output\n", outer, C, inner);
    return 1;
  }
  double worst = 0;
  for (long long r = 0; r < rows; ++r) {
    const long long o = r / inner, i = r % inner;
    auto at = [&](long long c) { return o * C * inner + c * inner + i; };
    double m = -INFINITY, sum = 0;
    for (long long c = 0; c < C; ++c) m = std::fmax(m, double(x[at(c)]));
    for (long long c = 0; c < C; ++c) sum += std::exp(double(x[at(c)]) - m);
    const double lse = m + std::log(sum);
    auto worse = [&worst](double e) { worst = e <= worst ? worst : e; };  // a NaN error stays
    worse(std::fabs(double(loss[r]) - (lse - double(x[at(t[r])]))) / (1 + std::fabs(lse)));
    for (long long c = 0; c < C; ++c) {
      const double g = std::exp(double(x[at(c)]) - lse) - (c == t[r] ? 1.0 : 0.0);
      worse(std::fabs(double(grad[at(c)]) - g));
    }
  }
  const bool as_cluster = fl_emu::launch_counts().cluster_launches > clusters;
  std::printf("(%lld, %lld, %lld) cluster=%d: worst error %.3g%s\n", outer, C, inner, int(cluster), worst,
              as_cluster ? " (thread-block cluster plan)" : "");
  return worst <= 2e-5 ? 0 : 1;
}

int rows_mode() {
  const long long shapes[][3] = {{37, 11, 1}, {3, 5, 7}, {50, 17, 1}, {64, 128, 1}, {6, 1000, 1}, {3, 32000, 1},
                                 {2, 70000, 1}};
  int status = 0;
  for (const auto& sh : shapes)
    for (bool cluster : {false, true}) {
      const int r = check_rows(sh[0], sh[1], sh[2], cluster);
      if (r > status) status = r;
    }
  return status;
}

// ---- kernels the emulator must refuse -------------------------------------------------------------

__global__ void exit_while_others_wait(int* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void divergent_barriers(int* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void mask_omits_a_participating_lane(int* out) {
  // Every lane takes part, but the mask names lanes 0-15 only.
  out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, int(threadIdx.x), 1);
}

__global__ void reads_a_lane_outside_the_mask(int* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, int(threadIdx.x), 16);
}

__global__ void full_mask_with_an_exited_lane(int* out) {
  if (threadIdx.x == 31) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, int(threadIdx.x), 1);
}

__global__ void uninitialised_shared_read(float* out) {
  FL_SHARED_ARRAY(float, tile, 64);
  if (threadIdx.x < 32) tile[threadIdx.x] = 1.0f;  // half of the tile only
  __syncthreads();
  out[threadIdx.x] = tile[threadIdx.x];
}

int bad_mode(const std::string& mode) {
  std::vector<int> out(64, 0);
  std::vector<float> fout(64, 0.0f);
  cudaError_t e = cudaSuccess;
  if (mode == "exit_while_others_wait") e = launch_kernel(exit_while_others_wait, 1, 64, 0, nullptr, out.data());
  else if (mode == "divergent_barriers") e = launch_kernel(divergent_barriers, 1, 64, 0, nullptr, out.data());
  else if (mode == "mask_omits_a_participating_lane")
    e = launch_kernel(mask_omits_a_participating_lane, 1, 32, 0, nullptr, out.data());
  else if (mode == "reads_a_lane_outside_the_mask")
    e = launch_kernel(reads_a_lane_outside_the_mask, 1, 32, 0, nullptr, out.data());
  else if (mode == "full_mask_with_an_exited_lane")
    e = launch_kernel(full_mask_with_an_exited_lane, 1, 32, 0, nullptr, out.data());
  else if (mode == "uninitialised_shared_read") {
    e = launch_kernel(uninitialised_shared_read, 1, 64, 0, nullptr, fout.data());
    if (e == cudaSuccess) {
      int nans = 0;
      for (float v : fout) nans += v != v;
      std::printf("%d NaN values read from unwritten shared memory\n", nans);
      return nans == 32 ? 3 : 0;
    }
  } else {
    std::printf("unknown mode %s\n", mode.c_str());
    return 4;
  }
  if (e == cudaSuccess) return 0;
  std::printf("launch failed: %s\n", cudaGetErrorString(e));
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "rows";
  return mode == "rows" ? rows_mode() : bad_mode(mode);
}
