// conv2d by Winograd minimal filtering F(2x2, 3x3) and F(4x4, 3x3) (codelets in winograd.h),
// on the tiled transform driver (tiled_conv.h): per output tile, 16 or 36 channel-reducing
// GEMMs instead of 9 * 4 or 9 * 16 multiplications per output pixel.
//
// Gradients: the input gradient of a stride-1 3x3 convolution is itself a 3x3 convolution of
// grad_y with the rotated, channel-transposed filters (tiled_conv.h), so it runs the same
// Winograd forward. The weight gradient (a correlation whose "filter" is grad_y, as large as
// the image) runs im2col + GEMM.
//
// The filter transform is recomputed on every call, not cached: a cache keyed on the weight
// array goes stale when an optimiser updates it in place. Its cost is not small for wide layers
// at small batch (K = C = 256: a one-tile call takes ~70% of the time of the whole 8-image
// resnet50_3x3 layer, measured on a loaded machine), so caching U per weight version is the
// next step.
#include "conv/winograd.h"

#include "conv/tiled_conv.h"

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
  void input(const T* tile, index_t lanes, T* out, index_t point_stride, index_t, T* work) const {
    winograd::transform_2d(&F::template input<T>, F::alpha, F::alpha, tile, lanes, out, point_stride, lanes, work);
  }
  template <class T>
  void output(const T* in, index_t point_stride, index_t, index_t lanes, T* tile, T* work) const {
    winograd::transform_2d(&F::template output<T>, F::alpha, M, in, point_stride, tile, lanes, lanes, work);
  }
};

}  // namespace

template <int M, class T>
void conv2d_forward_winograd(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y) {
  tiled_conv(forward_geometry(s), WinogradTransform<M>{}, x, w, 3, 3, bias, relu, y);
}

template <int M, class T>
void conv2d_backward_input_winograd(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x) {
  const std::vector<T> rotated = rotated_transposed_weights(s, w);
  tiled_conv(backward_input_geometry(s), WinogradTransform<M>{}, grad_y, rotated.data(), 3, 3,
             static_cast<const T*>(nullptr), false, grad_x);
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

#define FASTCONV_INSTANTIATE(M, T)                                                                                  \
  template void conv2d_forward_winograd<M, T>(const Conv2dShape&, const T*, const T*, const T*, bool, T*);          \
  template void conv2d_backward_input_winograd<M, T>(const Conv2dShape&, const T*, const T*, T*);                   \
  template void winograd_codelet<M, T>(WinogradCodelet, const T*, index_t, T*);
FASTCONV_INSTANTIATE(2, float)
FASTCONV_INSTANTIATE(2, double)
FASTCONV_INSTANTIATE(4, float)
FASTCONV_INSTANTIATE(4, double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv
