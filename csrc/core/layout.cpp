#include "core/layout.h"

#include <algorithm>
#include <cstring>

#include "core/checked_math.h"
#include "core/isa.h"
#include "core/parallel.h"
#include "core/scratch.h"

namespace fastconv {

namespace {

// Rows per unit of work: a band of the source's rows whose transposed columns are written in
// runs of that length.
constexpr index_t kBand = 64;

template <class T>
void transpose_band(const T* src, T* dst, index_t rows, index_t cols, index_t r0, index_t r1) {
#if FASTCONV_X86
  if (vector_isa() >= Isa::avx2) return transpose_rows_avx2(src, dst, rows, cols, r0, r1);
#endif
  for (index_t j = 0; j < cols; ++j)
    for (index_t i = r0; i < r1; ++i) dst[j * rows + i] = src[i * cols + j];
}

// dst[img][j][i] = src[img][i][j] for n images of rows x cols, bands of rows split over the threads.
template <class T>
void transpose_images(const T* src, T* dst, index_t n, index_t rows, index_t cols) {
  const index_t bands = ceil_div(rows, kBand), image = rows * cols;
  parallel_for(0, n * bands, 4, [&](index_t lo, index_t hi) {
    for (index_t u = lo; u < hi; ++u) {
      const index_t img = u / bands, r0 = u % bands * kBand;
      transpose_band(src + img * image, dst + img * image, rows, cols, r0, std::min(rows, r0 + kBand));
    }
  });
}

// One wide row, (n, c, h r + a) of `wide`, and the r deep rows it interleaves, (n, c r^2 + a r + b, h)
// for b < r: wide[w r + b] = deep_b[w] (Shuffle) or the reverse; the side read is const. Factor
// 2, the common one, is its own instance so that the interleave is vectorised.
template <bool Shuffle, int Factor, class Wide, class Deep>
void rearrange_row(Wide* wide, Deep* deep, index_t deep_step, index_t W, index_t r) {
  const index_t f = Factor > 0 ? Factor : r;
  for (index_t w = 0; w < W; ++w)
    for (index_t b = 0; b < f; ++b) {
      if constexpr (Shuffle) wide[w * f + b] = deep[b * deep_step + w];
      else deep[b * deep_step + w] = wide[w * f + b];
    }
}

// The wide array's rows over the threads. `wide` and `deep` are the two arrays' memory, the
// deep one (N, C r^2, H, W), the wide one (N, C, H r, W r).
template <bool Shuffle, class Wide, class Deep>
void rearrange(Wide* wide, Deep* deep, const std::array<index_t, 4>& deep_shape, index_t r) {
  const index_t C = deep_shape[1] / (r * r), H = deep_shape[2], W = deep_shape[3];
  const index_t rows = deep_shape[0] * C * H * r;  // wide rows, (n, c, h r + a) in order
  parallel_for(0, rows, 16, [&](index_t lo, index_t hi) {
    for (index_t row = lo; row < hi; ++row) {
      const index_t nc = row / (H * r), h = row % (H * r) / r, a = row % r;
      Wide* wide_row = wide + row * W * r;
      Deep* deep_row = deep + ((nc * r * r + a * r) * H + h) * W;  // channel c r^2 + a r, image n
      if (r == 2) rearrange_row<Shuffle, 2>(wide_row, deep_row, H * W, W, r);
      else rearrange_row<Shuffle, 0>(wide_row, deep_row, H * W, W, r);
    }
  });
}

}  // namespace

index_t factor_squared(index_t factor) {
  if (factor < 1) fail<ValueError>("factor: expected an integer >= 1, got ", factor);
  return checked_mul(factor, factor, "factor^2");
}

std::array<index_t, 4> wide_shape(const std::array<index_t, 4>& deep, index_t factor, const char* deep_name) {
  const index_t r2 = factor_squared(factor);
  if (deep[1] % r2 != 0)
    fail<ValueError>(deep_name, ": expected channels divisible by factor^2 = ", r2, ", got ", deep[1]);
  return {deep[0], deep[1] / r2, checked_mul(deep[2], factor, deep_name, ": height x factor"),
          checked_mul(deep[3], factor, deep_name, ": width x factor")};
}

void pixel_shuffle(const TensorArg& src, const TensorArg& dst, index_t factor) {
  const std::array<index_t, 4> deep = shape4(src, "src", "(N, C*factor^2, H, W)");
  const std::array<index_t, 4> wide = wide_shape(deep, factor, "src");
  dispatch_float(src, "src", [&](auto tag) {
    using T = decltype(tag);
    const T* from = nchw_arg<const T>(src, "src", deep);
    rearrange<true>(nchw_arg<T>(dst, "dst", wide), from, deep, factor);
  });
}

void pixel_unshuffle(const TensorArg& src, const TensorArg& dst, index_t factor) {
  const std::array<index_t, 4> wide = shape4(src, "src", "(N, C, H*factor, W*factor)");
  const index_t r2 = factor_squared(factor);
  for (int d : {2, 3})
    if (wide[d] % factor != 0)
      fail<ValueError>("src: expected height and width divisible by factor = ", factor, ", got shape ",
                       shape_str(src));
  const std::array<index_t, 4> deep = {wide[0], checked_mul(wide[1], r2, "src: channels x factor^2"),
                                       wide[2] / factor, wide[3] / factor};
  dispatch_float(src, "src", [&](auto tag) {
    using T = decltype(tag);
    const T* from = nchw_arg<const T>(src, "src", wide);
    rearrange<false>(from, nchw_arg<T>(dst, "dst", deep), deep, factor);
  });
}

void copy_layout(const TensorArg& src, const TensorArg& dst) {
  const std::array<index_t, 4> shape = shape4(src, "src", "(N, C, H, W)");
  dispatch_float(src, "src", [&](auto tag) {
    using T = decltype(tag);
    const bool from_nhwc = is_channels_last(src), to_nhwc = is_channels_last(dst);
    const T* from = image_arg<const T>(src, "src", shape, from_nhwc);
    T* to = image_arg<T>(dst, "dst", shape, to_nhwc);
    const index_t planes = shape[2] * shape[3];
    if (from_nhwc == to_nhwc)
      std::memcpy(to, from, static_cast<std::size_t>(src.nbytes()));
    else if (to_nhwc)
      transpose_images(from, to, shape[0], shape[1], planes);  // [C x HW] -> [HW x C]
    else
      transpose_images(from, to, shape[0], planes, shape[1]);  // [HW x C] -> [C x HW]
  });
}

}  // namespace fastconv
