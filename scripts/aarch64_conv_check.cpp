// Runs on the cross-compiled aarch64 kernels (scripts/aarch64_check.sh, under qemu-aarch64): the
// forward conv2d of every algorithm this build supports, on 3x3, 5x5 and 7x7 kernels (each
// algorithm on those it runs), float32 and float64, against a float64 loop here. Exit status 1
// names the first algorithm whose result differs.
#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "conv/conv.h"
#include "core/isa.h"

namespace {

using fastconv::DType;
using fastconv::index_t;
using fastconv::TensorArg;

template <class T>
struct Array {
  std::vector<T> values;
  std::array<index_t, 4> shape, strides;
  TensorArg arg() {
    TensorArg a;
    a.data = values.data();
    a.dtype = sizeof(T) == 4 ? DType::float32 : DType::float64;
    a.dtype_name = sizeof(T) == 4 ? "float32" : "float64";
    a.itemsize = sizeof(T);
    a.ndim = 4;
    a.shape = shape.data();
    a.strides = strides.data();
    a.writeable = a.c_contiguous = true;
    return a;
  }
};

template <class T>
Array<T> array(std::array<index_t, 4> shape, const std::vector<double>& from = {}) {
  Array<T> a{std::vector<T>(shape[0] * shape[1] * shape[2] * shape[3], T(NAN)), shape, {}};
  for (std::size_t i = 0; i < from.size(); ++i) a.values[i] = static_cast<T>(from[i]);
  for (int d = 3, stride = sizeof(T); d >= 0; stride *= shape[d--]) a.strides[d] = stride;
  return a;
}

// y[n][k][p][q] = sum over c, r, s of x[n][c][p + r - R/2][q + s - R/2] w[k][c][r][s], R x R,
// padding R/2.
std::vector<double> reference(const std::vector<double>& x, const std::vector<double>& w, index_t N, index_t C,
                              index_t H, index_t W, index_t K, index_t R) {
  std::vector<double> y(N * K * H * W, 0.0);
  for (index_t n = 0; n < N; ++n)
    for (index_t k = 0; k < K; ++k)
      for (index_t p = 0; p < H; ++p)
        for (index_t q = 0; q < W; ++q)
          for (index_t c = 0; c < C; ++c)
            for (index_t r = 0; r < R; ++r)
              for (index_t s = 0; s < R; ++s) {
                const index_t h = p + r - R / 2, v = q + s - R / 2;
                if (h >= 0 && h < H && v >= 0 && v < W)
                  y[((n * K + k) * H + p) * W + q] += x[((n * C + c) * H + h) * W + v] * w[((k * C + c) * R + r) * R + s];
              }
  return y;
}

template <class T>
bool check(const std::string& algo, const std::vector<double>& x, const std::vector<double>& w,
           const std::vector<double>& expected, std::array<index_t, 4> xs, std::array<index_t, 4> ws) {
  fastconv::conv::Conv2dParams params;
  params.pad_begin = params.pad_end = {ws[2] / 2, ws[3] / 2};
  const auto ys = fastconv::conv::conv2d_output_shape(xs, ws, params);
  if (fastconv::conv::conv2d_unsupported_reason(algo, xs, ws, params)) return true;
  Array<T> input = array<T>(xs, x), weight = array<T>(ws, w), out = array<T>(ys);
  fastconv::conv::conv2d_forward(input.arg(), weight.arg(), TensorArg{}, out.arg(), params, algo, false, TensorArg{});
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) worst = std::fmax(worst, std::fabs(out.values[i] - expected[i]));
  const double tolerance = sizeof(T) == 4 ? 1e-3 : 1e-9;
  std::printf("%-14s %ldx%ld %s: largest difference %.2e (tolerance %.0e)\n", algo.c_str(), long(ws[2]), long(ws[3]),
              sizeof(T) == 4 ? "float32" : "float64", worst, tolerance);
  return worst <= tolerance;  // NaN (an output never written) fails too
}

}  // namespace

int main() {
  const index_t N = 2, C = 5, H = 9, W = 11, K = 6;
  std::mt19937 generator(0);
  std::normal_distribution<double> normal;
  std::vector<double> x(N * C * H * W);
  for (double& v : x) v = normal(generator);
  std::printf("isa %s\n", fastconv::isa_name(fastconv::active_isa()));
  for (const index_t R : {3, 5, 7}) {
    std::vector<double> w(K * C * R * R);
    for (double& v : w) v = normal(generator);
    const std::vector<double> expected = reference(x, w, N, C, H, W, K, R);
    for (const std::string& algo : fastconv::conv::algorithm_names()) {
      const bool ok = check<float>(algo, x, w, expected, {N, C, H, W}, {K, C, R, R}) &&
                      check<double>(algo, x, w, expected, {N, C, H, W}, {K, C, R, R});
      if (!ok) {
        std::printf("%s %ldx%ld: the result differs from the reference\n", algo.c_str(), long(R), long(R));
        return 1;
      }
    }
  }
  return 0;
}
