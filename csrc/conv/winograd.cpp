// conv2d by Winograd minimal filtering F(2x2, 3x3) and F(4x4, 3x3) (codelets in winograd.h),
// on the tiled transform driver (tiled_conv.h): per output tile, 16 or 36 channel-reducing
// GEMMs instead of 9 * 4 or 9 * 16 multiplications per output pixel.
//
// Gradients: the input gradient of a stride-1 3x3 convolution is itself a 3x3 convolution of
// grad_y with the rotated, channel-transposed filters (tiled_conv.h), so it runs the same
// Winograd forward. The weight gradient (a correlation whose "filter" is grad_y, as large as
// the image) runs im2col + GEMM.
//
// The filter transform (U = G g G^T per filter) is its own entry point so that a caller can
// make it once per weight version and pass it to every call (ops/conv_weight_cache.py does,
// checked against the weight's bytes). It matters at small batch: K = C = 256, one 4x4 image,
// 1 thread: 8.9 ms transforming on each call, 2.6 ms with U reused (K = C = 64: 0.48 vs 0.24 ms).
#include "conv/winograd.h"

#include <type_traits>

#include "conv/tiled_conv.h"
#include "core/isa.h"

namespace fastconv::conv {

namespace {

// The tiled driver's view of F(m x m, 3 x 3): alpha^2 real points, one part each.
template <int M>
struct WinogradTransform {
  using F = winograd::F3<M>;
  static constexpr index_t alpha_h = F::alpha, alpha_w = F::alpha, m_h = M, m_w = M;
  static constexpr index_t points = F::alpha * F::alpha, parts = 1;

  static index_t work_size(index_t lanes) { return (F::alpha * F::alpha + 9) * lanes; }

  // values[pt * lanes + l] = (G g_l G^T)[pt] for `lanes` consecutive 3x3 filters g_l.
  template <class T>
  void filter(const T* w, index_t lanes, T* values, T* work) const {
    T* taps = work + F::alpha * F::alpha * lanes;  // [9][lanes]
    for (index_t l = 0; l < lanes; ++l)
      for (index_t i = 0; i < 9; ++i) taps[i * lanes + l] = w[l * 9 + i];
    winograd::transform_2d(&F::template filter<T>, 3, F::alpha, taps, lanes, values, lanes, lanes, work);
  }
  template <class T>
  void input_tiles(const tiled::PatchSource<T>& src, index_t lanes, T* out, index_t point_stride, index_t,
                   T* work) const {
    if constexpr (std::is_same_v<T, float>)
      if (vectorised(lanes)) {
        for (index_t l0 = 0; l0 < lanes; l0 += 8)
          winograd::input_tiles_avx2<M>({src.origin + l0, src.ld}, out + l0, point_stride);
        return;
      }
    tiled::gather_patches(F::alpha, F::alpha, src, lanes, work);
    const index_t patch = F::alpha * F::alpha * lanes;
    winograd::transform_2d(&F::template input<T>, F::alpha, F::alpha, work, lanes, out, point_stride, lanes, work + patch);
  }
  template <class T>
  void output_tiles(const T* in, index_t point_stride, index_t, index_t lanes, const tiled::TileTarget<T>* tiles,
                    index_t ld, T bias, bool relu, T* work) const {
    if constexpr (std::is_same_v<T, float>)
      if (vectorised(lanes)) {
        for (index_t l0 = 0; l0 < lanes; l0 += 8)
          winograd::output_tiles_avx2<M>(in + l0, point_stride, tiles + l0, ld, bias, relu);
        return;
      }
    const index_t tile = M * M * lanes;
    winograd::transform_2d(&F::template output<T>, F::alpha, M, in, point_stride, work, lanes, lanes, work + tile);
    tiled::scatter_tiles(work, M, lanes, tiles, ld, bias, relu);
  }

  // The weight gradient's: A dY A^T for `lanes` m x m gradient tiles.
  template <class T>
  void gradient_tiles(const tiled::PatchSource<T>& src, index_t lanes, T* out, index_t point_stride, T* work) const {
    if constexpr (std::is_same_v<T, float>)
      if (vectorised(lanes)) {
        for (index_t l0 = 0; l0 < lanes; l0 += 8)
          winograd::gradient_tiles_avx2<M>({src.origin + l0, src.ld}, out + l0, point_stride);
        return;
      }
    tiled::gather_patches(M, M, src, lanes, work);
    const index_t tile = M * M * lanes;
    winograd::transform_2d(&F::template output_adjoint<T>, M, F::alpha, work, lanes, out, point_stride, lanes, work + tile);
  }

 private:
  // float lanes in whole AVX2 vectors run winograd_avx2.cpp's transforms.
  static bool vectorised(index_t lanes) { return lanes % 8 == 0 && active_isa() >= Isa::avx2; }
};

}  // namespace

// The input gradient's filters are the forward's with K and C swapped: not the same size once
// their rows are padded (tiled_conv.h).
template <int M>
index_t winograd_transformed_size(const Conv2dShape& s, WeightUse use) {
  const TiledGeometry g = use == WeightUse::forward ? forward_geometry(s) : backward_input_geometry(s);
  return tiled::transformed_filters_size(g, WinogradTransform<M>{});
}

template <int M, class T>
void winograd_transform_weight(const Conv2dShape& s, WeightUse use, const T* w, T* u) {
  if (use == WeightUse::forward) return tiled::transform_filters(forward_geometry(s), WinogradTransform<M>{}, w, 3, 3, u);
  const std::vector<T> rotated = rotated_transposed_weights(s, w);
  tiled::transform_filters(backward_input_geometry(s), WinogradTransform<M>{}, rotated.data(), 3, 3, u);
}

// `u`: the weight transformed by winograd_transform_weight(WeightUse::forward), or null.
template <int M, class T>
void conv2d_forward_winograd(const Conv2dShape& s, const T* x, const T* w, const T* u, const T* bias, bool relu,
                             T* y) {
  if (u) return tiled_conv_transformed(forward_geometry(s), WinogradTransform<M>{}, x, u, bias, relu, y);
  tiled_conv(forward_geometry(s), WinogradTransform<M>{}, x, w, 3, 3, bias, relu, y);
}

// `u`: the weight transformed by winograd_transform_weight(WeightUse::input_gradient), or null.
template <int M, class T>
void conv2d_backward_input_winograd(const Conv2dShape& s, const T* grad_y, const T* w, const T* u, T* grad_x) {
  const T* no_bias = nullptr;
  if (u) return tiled_conv_transformed(backward_input_geometry(s), WinogradTransform<M>{}, grad_y, u, no_bias, false, grad_x);
  const std::vector<T> rotated = rotated_transposed_weights(s, w);
  tiled_conv(backward_input_geometry(s), WinogradTransform<M>{}, grad_y, rotated.data(), 3, 3, no_bias, false, grad_x);
}

// grad_w[k, c] = G^T dU[., k, c] G from the per-point sums (tiled_conv.h), kLanes filters at once.
template <int M, class T>
void conv2d_backward_weight_winograd(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  using F = winograd::F3<M>;
  constexpr index_t lanes = tiled::kLanes;
  const index_t filters = s.K * s.C_per_group();
  std::vector<T> du(F::alpha * F::alpha * filters);
  tiled::weight_gradient_points(forward_geometry(s), WinogradTransform<M>{}, x, grad_y, du.data());
  parallel_for(0, ceil_div(filters, lanes), 1, [&](index_t lo, index_t hi) {
    T taps[9 * lanes], work[3 * F::alpha * lanes];
    for (index_t i = lo; i < hi; ++i) {
      const index_t f0 = i * lanes, n = std::min(lanes, filters - f0);
      winograd::transform_2d(&F::template filter_adjoint<T>, F::alpha, 3, du.data() + f0, filters, taps, n, n, work);
      for (index_t l = 0; l < n; ++l)
        for (index_t t = 0; t < 9; ++t) grad_w[(f0 + l) * 9 + t] = taps[t * n + l];
    }
  });
  if (grad_bias) conv2d_bias_grad(s, grad_y, grad_bias);
}

template <int M, class T>
void winograd_codelet(WinogradCodelet which, const T* in, index_t count, T* out) {
  using F = winograd::F3<M>;
  const auto codelet = which == WinogradCodelet::filter  ? &F::template filter<T>
                       : which == WinogradCodelet::input ? &F::template input<T>
                                                         : &F::template output<T>;
  const int n_in = which == WinogradCodelet::filter ? 3 : F::alpha;
  const int n_out = which == WinogradCodelet::output ? M : F::alpha;
  T work[F::alpha * F::alpha];
  for (index_t i = 0; i < count; ++i)
    winograd::transform_2d(codelet, n_in, n_out, in + i * n_in * n_in, 1, out + i * n_out * n_out, 1, 1, work);
}

template index_t winograd_transformed_size<2>(const Conv2dShape&, WeightUse);
template index_t winograd_transformed_size<4>(const Conv2dShape&, WeightUse);

#define FASTCONV_INSTANTIATE(M, T)                                                                                   \
  template void winograd_transform_weight<M, T>(const Conv2dShape&, WeightUse, const T*, T*);                        \
  template void conv2d_forward_winograd<M, T>(const Conv2dShape&, const T*, const T*, const T*, const T*, bool, T*); \
  template void conv2d_backward_input_winograd<M, T>(const Conv2dShape&, const T*, const T*, const T*, T*);          \
  template void conv2d_backward_weight_winograd<M, T>(const Conv2dShape&, const T*, const T*, T*, T*);               \
  template void winograd_codelet<M, T>(WinogradCodelet, const T*, index_t, T*);
FASTCONV_INSTANTIATE(2, float)
FASTCONV_INSTANTIATE(2, double)
FASTCONV_INSTANTIATE(4, float)
FASTCONV_INSTANTIATE(4, double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv
