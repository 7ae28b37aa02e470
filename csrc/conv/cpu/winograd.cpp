// conv2d by Winograd minimal filtering F(2x2, 3x3), F(4x4, 3x3), F(2x2, 5x5), F(4x4, 5x5),
// F(2x2, 7x7) and F(4x4, 2x2) (codelets in winograd.h, their vector forms in winograd_rows.h,
// compiled per ISA), on the tiled transform driver (tiled_conv.h): per output tile, 16, 36, 36,
// 64, 64 or 25 channel-reducing GEMMs instead of 9 * 4, 9 * 16, 25 * 4, 25 * 16, 49 * 4 or 4 * 16
// multiplications per channel pair.
//
// Gradients: the input gradient of a stride-1 convolution is itself a convolution of grad_y
// with the rotated, channel-transposed filters (tiled_conv.h), so it runs the same Winograd
// forward. The weight gradient runs the algorithm backwards (winograd.h's top comment).
//
// The filter transform (U = G g G^T per filter) is its own entry point so that a caller can
// make it once per weight version and pass it to every call (ops/conv_weight_cache.py does,
// checked against the weight's bytes). It matters at small batch: K = C = 256, one 4x4 image,
// 1 thread: 8.9 ms transforming on each call, 2.6 ms with U reused (K = C = 64: 0.48 vs 0.24 ms).
#include "conv/cpu/winograd.h"

#include <memory>
#include <type_traits>

#include "conv/cpu/tiled_conv.h"
#include "core/isa.h"

namespace fastconv::conv::cpu {

namespace {

// The tiled driver's view of F(m x m, r x r): alpha^2 real points, one part each.
template <int M, int R>
struct WinogradTransform {
  using F = winograd::F<M, R>;
  static constexpr index_t alpha_h = F::alpha, alpha_w = F::alpha, m_h = M, m_w = M;
  static constexpr index_t points = F::alpha * F::alpha, parts = 1;
  // Values a gradient tile's row read touches: the tile's own (winograd_rows.h's gradient_tiles).
  static index_t gradient_row_reads() { return M; }

  static index_t work_size(index_t lanes) { return (F::alpha * F::alpha + R * R) * lanes; }

  // V and M of half a MiB per block, or a quarter of U's size when that is more: every block
  // reads all of U. Measured one thread, U packed once, interleaved runs of 256 KiB to 8 MiB:
  // resnet20_c32 2.99-3.06 ms at 256-512 KiB, 3.96 at 8 MiB; vgg_conv3 (U 2.4 MiB) 18.4-19.5 ms
  // at 0.5-1 MiB, 20.6 at 8 MiB; resnet50_3x3 (U 9.4 MiB) 11.4 ms at 2 MiB, 13.3 at 256 KiB.
  static index_t block_bytes(index_t filter_bytes) { return std::max<index_t>(512 << 10, filter_bytes / 4); }

  // Set for the weight gradient, whose transforms are AVX2's on AVX-512 too (weight_gradient_vectors).
  bool weight_gradient = false;

  // values[pt * lanes + l] = (G g_l G^T)[pt] for `lanes` consecutive r x r filters g_l.
  template <class T>
  void filter(const T* w, index_t lanes, T* values, T* work) const {
    if constexpr (std::is_same_v<T, float>)
      if (const auto& vt = vectors(); vt.filter && vectorised(vt, lanes))
        return by_vectors(vt, lanes, [&](index_t l0) { vt.filter(w + l0 * R * R, values + l0, lanes); });
    T* taps = work + F::alpha * F::alpha * lanes;  // [R * R][lanes]
    for (index_t l = 0; l < lanes; ++l)
      for (index_t i = 0; i < R * R; ++i) taps[i * lanes + l] = w[l * R * R + i];
    winograd::transform_2d(&F::template filter<T>, R, F::alpha, taps, lanes, values, lanes, lanes, work);
  }
  template <class T>
  void input_tiles(const tiled::PatchSource<T>& src, index_t lanes, T* out, index_t point_stride, index_t,
                   T* work) const {
    if constexpr (std::is_same_v<T, float>)
      if (const auto& vt = weight_gradient ? weight_gradient_vectors() : vectors(); vectorised(vt, lanes))
        return by_vectors(vt, lanes,
                          [&](index_t l0) { vt.input({src.origin + l0, src.ld}, out + l0, point_stride); });
    tiled::gather_patches(F::alpha, F::alpha, src, lanes, work);
    const index_t patch = F::alpha * F::alpha * lanes;
    winograd::transform_2d(&F::template input<T>, F::alpha, F::alpha, work, lanes, out, point_stride, lanes, work + patch);
  }
  template <class T>
  void output_tiles(const T* in, index_t point_stride, index_t, index_t lanes, const tiled::TileTarget<T>* tiles,
                    index_t ld, T bias, bool relu, T* work) const {
    if constexpr (std::is_same_v<T, float>)
      if (const auto& vt = vectors(); vectorised(vt, lanes))
        return by_vectors(vt, lanes, [&](index_t l0) { vt.output(in + l0, point_stride, tiles + l0, ld, bias, relu); });
    const index_t tile = M * M * lanes;
    winograd::transform_2d(&F::template output<T>, F::alpha, M, in, point_stride, work, lanes, lanes, work + tile);
    tiled::scatter_tiles(work, M, lanes, tiles, ld, bias, relu);
  }

  // output_tiles for two channels at once, interleaved column by column into the targets (a
  // pixel shuffle of factor 2; bias: the two channels', or null): whether this ISA's vector
  // transforms did it (float, whole vectors of lanes), else the caller does it through output_tiles.
  template <class T>
  bool output_tile_pairs(const T* const* in, index_t point_stride, index_t lanes, const tiled::TileTarget<T>* tiles,
                         index_t ld, const T* bias, bool relu) const {
    if constexpr (std::is_same_v<T, float>)
      if (const auto& vt = vectors(); vt.output_pairs && vectorised(vt, lanes)) {
        const float no_bias[2] = {0.0f, 0.0f};
        by_vectors(vt, lanes, [&](index_t l0) {
          const float* at[2] = {in[0] + l0, in[1] + l0};
          vt.output_pairs(at, point_stride, tiles + l0, ld, bias ? bias : no_bias, relu);
        });
        return true;
      }
    return false;
  }

  // The weight gradient's: A dY A^T for `lanes` m x m gradient tiles.
  template <class T>
  void gradient_tiles(const tiled::PatchSource<T>& src, index_t lanes, T* out, index_t point_stride, index_t,
                      T* work) const {
    if constexpr (std::is_same_v<T, float>)
      if (const auto& vt = weight_gradient_vectors(); vectorised(vt, lanes))
        return by_vectors(vt, lanes,
                          [&](index_t l0) { vt.gradient({src.origin + l0, src.ld}, out + l0, point_stride); });
    tiled::gather_patches(M, M, src, lanes, work);
    const index_t tile = M * M * lanes;
    winograd::transform_2d(&F::template output_adjoint<T>, M, F::alpha, work, lanes, out, point_stride, lanes, work + tile);
  }

 private:
  // float lanes in whole vectors run vector_isa()'s transforms (winograd_avx2.cpp, 8 at a time,
  // winograd_avx512.cpp, 16; x86 builds only: the files are empty elsewhere).
  using Vectorised = winograd::VectorTransforms<M, R>;
  static const Vectorised& vectors() {
#if FASTCONV_X86
    static const IsaTables<Vectorised> tables(Vectorised{}, winograd::vector_transforms_avx2<M, R>(),
                                              winograd::vector_transforms_avx512<M, R>());
#else
    static const IsaTables<Vectorised> tables{Vectorised{}};
#endif
    return tables.active();
  }
  // The weight gradient writes each point's lanes to a line of its own, a block's channels
  // apart; there 16-lane transforms cost the whole weight gradient more than 8-lane ones
  // (perf, one thread, resnet20_c64's F(2x2): _C samples 2087 at 16 lanes, 1998 at 8, 1968
  // before either), so AVX-512 runs AVX2's.
  static const Vectorised& weight_gradient_vectors() {
#if FASTCONV_X86
    static const Vectorised avx2 = winograd::vector_transforms_avx2<M, R>();
    static const IsaTables<Vectorised> tables(Vectorised{}, avx2, avx2);
#else
    static const IsaTables<Vectorised> tables{Vectorised{}};
#endif
    return tables.active();
  }
  static bool vectorised(const Vectorised& vt, index_t lanes) { return vt.lanes && lanes % vt.lanes == 0; }
  template <class Vector>
  static void by_vectors(const Vectorised& vt, index_t lanes, const Vector& vector) {
    for (index_t l0 = 0; l0 < lanes; l0 += vt.lanes) vector(l0);
  }
};

}  // namespace

// The input gradient's filters are the forward's with K and C swapped: not the same size once
// their rows are padded (tiled_conv.h). A strided convolution's are its phase filters'.
template <int M, int R>
index_t winograd_transformed_size(const Conv2dShape& s, WeightUse use) {
  if (s.is_strided()) return winograd_transformed_size<M, R>(phase_shape(s), use);
  const TiledGeometry g = use == WeightUse::forward ? forward_geometry(s) : backward_input_geometry(s);
  return tiled::transformed_filters_size(g, WinogradTransform<M, R>{});
}

template <int M, int R, class T>
void winograd_transform_weight(const Conv2dShape& s, WeightUse use, const T* w, T* u) {
  if (s.is_strided()) return winograd_transform_weight<M, R>(phase_shape(s), use, phase_weights(s, w).data(), u);
  if (use == WeightUse::forward) return tiled::transform_filters(forward_geometry(s), WinogradTransform<M, R>{}, w, R, R, u);
  const std::vector<T> rotated = rotated_transposed_weights(s, w);
  tiled::transform_filters(backward_input_geometry(s), WinogradTransform<M, R>{}, rotated.data(), R, R, u);
}

// `u`: the weight transformed by winograd_transform_weight(WeightUse::forward), or null. A
// strided convolution reads its phases straight from x (forward_geometry). `shuffle`: y is the
// output pixel-shuffled by that factor (TiledGeometry), with no residual.
template <int M, int R, class T>
void conv2d_forward_winograd(const Conv2dShape& s, const T* x, const T* w, const T* u, const T* bias,
                             const T* residual, bool relu, T* y, index_t shuffle) {
  TiledGeometry g = forward_geometry(s);
  g.shuffle = shuffle;
  if (u) return tiled_conv_transformed(g, WinogradTransform<M, R>{}, x, u, bias, residual, relu, y);
  const std::vector<T> phased = s.is_strided() ? phase_weights(s, w) : std::vector<T>();
  const T* filters = s.is_strided() ? phased.data() : w;
  tiled_conv(g, WinogradTransform<M, R>{}, x, filters, R, R, bias, residual, relu, y);
}

// `u`: the weight transformed by winograd_transform_weight(WeightUse::input_gradient), or null.
// A strided convolution's is its phases' input gradient, made whole (P + R' - 1 x Q + S' - 1
// per phase plane: about x's size) and then gathered into grad_x. `shuffle` (stride 1 only):
// grad_y is the gradient of the output pixel-shuffled by that factor, read as its unshuffle.
template <int M, int R, class T>
void conv2d_backward_input_winograd(const Conv2dShape& s, const T* grad_y, const T* w, const T* u, T* grad_x,
                                    index_t shuffle) {
  if (s.is_strided()) {
    const Conv2dShape ps = phase_shape(s);
    const std::unique_ptr<T[]> phase_grad(new T[ps.N * ps.C * ps.H * ps.W]);  // every value written
    conv2d_backward_input_winograd<M, R>(ps, grad_y, phase_weights(s, w).data(), u, phase_grad.get(), 1);
    return gather_phase_gradient(s, phase_grad.get(), grad_x);
  }
  const T* no_bias = nullptr;
  const TiledGeometry g = shuffle > 1 ? reading_unshuffled(backward_input_geometry(s), shuffle)
                                      : backward_input_geometry(s);
  if (u) return tiled_conv_transformed(g, WinogradTransform<M, R>{}, grad_y, u, no_bias, no_bias, false, grad_x);
  const std::vector<T> rotated = rotated_transposed_weights(s, w);
  tiled_conv(g, WinogradTransform<M, R>{}, grad_y, rotated.data(), R, R, no_bias, no_bias, false, grad_x);
}

// grad_w[k, c] = G^T dU[., k, c] G from the per-point sums (tiled_conv.h), kLanes filters at once;
// a strided convolution's are its phase filters' gradients, put back in place.
template <int M, int R, class T>
void conv2d_backward_weight_winograd(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  using F = winograd::F<M, R>;
  constexpr index_t lanes = tiled::kLanes, taps = R * R;
  const TiledGeometry g = forward_geometry(s);
  const index_t filters = g.K * (g.C / g.groups);
  // Every value of both is written: zeroing du first (alpha^2 K C values) was 1.4% of resnet20_c64's
  // weight gradient.
  const std::unique_ptr<T[]> du(new T[F::alpha * F::alpha * filters]);
  const std::unique_ptr<T[]> phase_grad(s.is_strided() ? new T[filters * taps] : nullptr);
  WinogradTransform<M, R> weight_gradient;
  weight_gradient.weight_gradient = true;
  tiled::weight_gradient_points(g, weight_gradient, x, grad_y, du.get());
  T* const out = phase_grad ? phase_grad.get() : grad_w;
  parallel_for(0, ceil_div(filters, lanes), 1, [&](index_t lo, index_t hi) {
    T values[taps * lanes], work[R * F::alpha * lanes];
    for (index_t i = lo; i < hi; ++i) {
      const index_t f0 = i * lanes, n = std::min(lanes, filters - f0);
      winograd::transform_2d(&F::template filter_adjoint<T>, F::alpha, R, du.get() + f0, filters, values, n, n, work);
      for (index_t l = 0; l < n; ++l)
        for (index_t t = 0; t < taps; ++t) out[(f0 + l) * taps + t] = values[t * n + l];
    }
  });
  if (phase_grad) phase_weight_gradient(s, phase_grad.get(), grad_w);
  if (grad_bias) conv2d_bias_grad(s, grad_y, grad_bias);
}

template <int M, class T>
void winograd_codelet(WinogradCodelet which, const T* in, index_t count, T* out) {
  using F = winograd::F<M, 3>;
  const auto codelet = which == WinogradCodelet::filter  ? &F::template filter<T>
                       : which == WinogradCodelet::input ? &F::template input<T>
                                                         : &F::template output<T>;
  const int n_in = which == WinogradCodelet::filter ? 3 : F::alpha;
  const int n_out = which == WinogradCodelet::output ? M : F::alpha;
  T work[F::alpha * F::alpha];
  for (index_t i = 0; i < count; ++i)
    winograd::transform_2d(codelet, n_in, n_out, in + i * n_in * n_in, 1, out + i * n_out * n_out, 1, 1, work);
}

#define FASTCONV_INSTANTIATE(M, R, T)                                                                                   \
  template void winograd_transform_weight<M, R, T>(const Conv2dShape&, WeightUse, const T*, T*);                        \
  template void conv2d_forward_winograd<M, R, T>(const Conv2dShape&, const T*, const T*, const T*, const T*, const T*, \
                                                 bool, T*, index_t);                                                 \
  template void conv2d_backward_input_winograd<M, R, T>(const Conv2dShape&, const T*, const T*, const T*, T*, index_t); \
  template void conv2d_backward_weight_winograd<M, R, T>(const Conv2dShape&, const T*, const T*, T*, T*);
#define FASTCONV_INSTANTIATE_TILE(M, R)                                         \
  template index_t winograd_transformed_size<M, R>(const Conv2dShape&, WeightUse); \
  FASTCONV_INSTANTIATE(M, R, float)                                             \
  FASTCONV_INSTANTIATE(M, R, double)
FASTCONV_INSTANTIATE_TILE(2, 3)
FASTCONV_INSTANTIATE_TILE(4, 3)
FASTCONV_INSTANTIATE_TILE(2, 5)
FASTCONV_INSTANTIATE_TILE(4, 5)
FASTCONV_INSTANTIATE_TILE(2, 7)
FASTCONV_INSTANTIATE_TILE(4, 2)
template void winograd_codelet<2, float>(WinogradCodelet, const float*, index_t, float*);
template void winograd_codelet<2, double>(WinogradCodelet, const double*, index_t, double*);
template void winograd_codelet<4, float>(WinogradCodelet, const float*, index_t, float*);
template void winograd_codelet<4, double>(WinogradCodelet, const double*, index_t, double*);
#undef FASTCONV_INSTANTIATE_TILE
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu
