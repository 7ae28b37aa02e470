#include "core/layout.h"

#include <algorithm>
#include <cstring>

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

}  // namespace

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
