// Runs on the cross-compiled aarch64 kernels (scripts/aarch64_check.sh, under qemu-aarch64): the
// forward conv2d of every algorithm this build supports, on 3x3, 5x5 and 7x7 kernels (each
// algorithm on those it runs; plain, and with a residual and the ReLU in its epilogue), and
// Winograd's pixel-shuffled forward (3x3, factor 2), and conv_transpose2d's own subpixel forward on
// a 4x4/2 kernel to 3 and to 16 output channels (its two band layouts), float32 and float64,
// against float64 loops here. Exit status 1 names the first algorithm whose result differs.
#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "conv/conv.h"
#include "conv_transpose/conv_transpose.h"
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

// Prints the largest difference of `got` from `expected` and whether it is within the dtype's
// tolerance (NaN, an output never written, fails too).
template <class T>
bool matches(const std::vector<T>& got, const std::vector<double>& expected, const char* what) {
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double d = std::fabs(got[i] - expected[i]);
    worst = std::isnan(d) ? INFINITY : std::fmax(worst, d);  // fmax alone would pass over a NaN
  }
  const double tolerance = sizeof(T) == 4 ? 1e-3 : 1e-9;
  std::printf("%s %s: largest difference %.2e (tolerance %.0e)\n", what, sizeof(T) == 4 ? "float32" : "float64", worst,
              tolerance);
  return worst <= tolerance;
}

template <class T>
bool check(const std::string& algo, const std::vector<double>& x, const std::vector<double>& w,
           const std::vector<double>& expected, std::array<index_t, 4> xs, std::array<index_t, 4> ws) {
  fastconv::conv::Conv2dParams params;
  params.pad_begin = params.pad_end = {ws[2] / 2, ws[3] / 2};
  const auto ys = fastconv::conv::conv2d_output_shape(xs, ws, params);
  if (fastconv::conv::conv2d_unsupported_reason(algo, xs, ws, params)) return true;
  Array<T> input = array<T>(xs, x), weight = array<T>(ws, w), out = array<T>(ys);
  fastconv::conv::conv2d_forward(input.arg(), weight.arg(), TensorArg{}, out.arg(), params, algo, false, TensorArg{},
                                 TensorArg{});
  char what[64];
  std::snprintf(what, sizeof what, "%-14s %ldx%ld", algo.c_str(), long(ws[2]), long(ws[3]));
  if (!matches(out.values, expected, what)) return false;
  // relu(conv + residual): the residual added where each output is stored, then the ReLU
  std::mt19937 generator(1);
  std::normal_distribution<double> normal;
  std::vector<double> r(expected.size()), fused_expected(expected.size());
  for (std::size_t i = 0; i < r.size(); ++i) {
    r[i] = 3 * normal(generator);
    fused_expected[i] = std::fmax(0.0, expected[i] + r[i]);
  }
  Array<T> residual = array<T>(ys, r), fused = array<T>(ys);
  fastconv::conv::conv2d_forward(input.arg(), weight.arg(), TensorArg{}, fused.arg(), params, algo, true, TensorArg{},
                                 residual.arg());
  std::snprintf(what, sizeof what, "%-14s %ldx%ld + residual, ReLU", algo.c_str(), long(ws[2]), long(ws[3]));
  return matches(fused.values, fused_expected, what);
}

// Winograd's forward writing its output pixel-shuffled by a factor of 2 (conv2d_forward's
// pixel_shuffle, through the tiled driver's buffer on this ISA): against `deep`, the plain
// convolution's reference, shuffled here.
template <class T>
bool check_shuffled(const std::string& algo, const std::vector<double>& x, const std::vector<double>& w,
                    const std::vector<double>& deep, std::array<index_t, 4> xs, std::array<index_t, 4> ws) {
  fastconv::conv::Conv2dParams params;
  params.pad_begin = params.pad_end = {1, 1};
  const index_t N = xs[0], K = ws[0] / 4, H = xs[2], W = xs[3];
  std::vector<double> expected(deep.size());
  for (index_t n = 0; n < N; ++n)
    for (index_t k = 0; k < 4 * K; ++k)
      for (index_t p = 0; p < H; ++p)
        for (index_t q = 0; q < W; ++q)  // deep channel k = c 4 + a 2 + b -> wide (c, 2 p + a, 2 q + b)
          expected[((n * K + k / 4) * 2 * H + 2 * p + k / 2 % 2) * 2 * W + 2 * q + k % 2] =
              deep[((n * 4 * K + k) * H + p) * W + q];
  Array<T> input = array<T>(xs, x), weight = array<T>(ws, w), out = array<T>({N, K, 2 * H, 2 * W});
  fastconv::conv::conv2d_forward(input.arg(), weight.arg(), TensorArg{}, out.arg(), params, algo, false, TensorArg{},
                                 TensorArg{}, 2);
  return matches(out.values, expected, (algo + " 3x3, pixel-shuffled").c_str());
}

// y[n][k][i * 2 - 1 + r][j * 2 - 1 + s] += x[n][c][i][j] w[c][k][r][s]: a 4x4 transposed
// convolution at stride 2, padding 1 (y twice x's size), by scatter.
std::vector<double> transposed_reference(const std::vector<double>& x, const std::vector<double>& w, index_t N,
                                         index_t C, index_t H, index_t W, index_t K) {
  std::vector<double> y(N * K * 2 * H * 2 * W, 0.0);
  for (index_t n = 0; n < N; ++n)
    for (index_t c = 0; c < C; ++c)
      for (index_t i = 0; i < H; ++i)
        for (index_t j = 0; j < W; ++j)
          for (index_t k = 0; k < K; ++k)
            for (index_t r = 0; r < 4; ++r)
              for (index_t s = 0; s < 4; ++s) {
                const index_t h = i * 2 - 1 + r, v = j * 2 - 1 + s;
                if (h >= 0 && h < 2 * H && v >= 0 && v < 2 * W)
                  y[((n * K + k) * 2 * H + h) * 2 * W + v] +=
                      x[((n * C + c) * H + i) * W + j] * w[((c * K + k) * 4 + r) * 4 + s];
              }
  return y;
}

template <class T>
bool check_subpixel(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& expected,
                    std::array<index_t, 4> xs, std::array<index_t, 4> ws) {
  fastconv::conv_transpose::ConvTranspose2dParams params;
  params.stride = {2, 2};
  params.padding = {1, 1};
  const auto ys = fastconv::conv_transpose::conv_transpose2d_output_shape(xs, ws, params);
  Array<T> input = array<T>(xs, x), weight = array<T>(ws, w), out = array<T>(ys);
  fastconv::conv_transpose::conv_transpose2d_forward(input.arg(), weight.arg(), TensorArg{}, out.arg(), params,
                                                     "subpixel");
  return matches(out.values, expected, ("subpixel       4x4/2 to " + std::to_string(ws[1]) + " channels").c_str());
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
  {
    std::vector<double> w(8 * C * 3 * 3);
    for (double& v : w) v = normal(generator);
    const std::vector<double> deep = reference(x, w, N, C, H, W, 8, 3);
    for (const std::string algo : {"winograd_2x3", "winograd_4x3"})
      if (!check_shuffled<float>(algo, x, w, deep, {N, C, H, W}, {8, C, 3, 3}) ||
          !check_shuffled<double>(algo, x, w, deep, {N, C, H, W}, {8, C, 3, 3})) {
        std::printf("%s pixel-shuffled: the result differs from the reference\n", algo.c_str());
        return 1;
      }
  }
  for (const index_t K_out : {3, 16}) {  // below and from subpixel's shifted copies (16 channels a group)
    std::vector<double> w(C * K_out * 4 * 4);
    for (double& v : w) v = normal(generator);
    const std::vector<double> expected = transposed_reference(x, w, N, C, H, W, K_out);
    if (!check_subpixel<float>(x, w, expected, {N, C, H, W}, {C, K_out, 4, 4}) ||
        !check_subpixel<double>(x, w, expected, {N, C, H, W}, {C, K_out, 4, 4})) {
      std::printf("subpixel to %ld channels: the result differs from the reference\n", long(K_out));
      return 1;
    }
  }
  return 0;
}
