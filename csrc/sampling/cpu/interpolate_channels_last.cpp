// interpolate forward and backward for channels_last arrays (NHWC memory): interpolate.cpp's
// kernels with a pixel's C channels as the innermost loop, adjacent in memory (vectorised), over
// the same tap tables (interpolate_taps.h) and in the same order of operations, so that every
// value has the NCHW kernels' bits.
//
// Forward: each output row of an image is independent, the unit of work. Backward: an input
// pixel gathers from several output rows, so the unit is a block of an image's channels, each
// gradient block with one writer (race-free, deterministic).
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/stream_store.h"
#include "sampling/cpu/channel_blocks.h"
#include "sampling/cpu/interpolate.h"
#include "sampling/cpu/interpolate_taps.h"
#include "sampling/cpu/sampling_loops.h"

namespace fastconv::sampling::cpu {

namespace {

// Nearest forward copies whole pixels along the (output -> input) index map.
template <class T>
void nearest_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  const bool exact = p.mode == InterpolateMode::nearest_exact;
  const auto rows = nearest_taps(s.H, s.OH, p.scale_h, exact);
  const auto columns = nearest_taps(s.W, s.OW, p.scale_w, exact);
  parallel_for(0, s.N * s.OH, 1, [&](index_t lo, index_t hi) {
    for (index_t r = lo; r < hi; ++r) {
      const index_t n = r / s.OH, oh = r % s.OH;
      const T* src = input + (n * s.H + rows[oh]) * s.W * s.C;
      T* dst = out + r * s.OW * s.C;
      for (index_t ow = 0; ow < s.OW; ++ow) std::memcpy(dst + ow * s.C, src + columns[ow] * s.C, sizeof(T) * s.C);
    }
  });
}

template <class T>
void bilinear_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  const auto rows = linear_taps<T>(s.H, s.OH, p.align_corners, p.scale_h);
  const auto columns = linear_taps<T>(s.W, s.OW, p.align_corners, p.scale_w);
  const index_t row_values = s.OW * s.C;
  const auto blend2 = sampling_loops<T>().blend2;
  // An upsampled output is several times its input: streamed past the cache when large
  const bool stream = stream_output(static_cast<std::size_t>(s.N * s.OH * row_values) * sizeof(T));
  parallel_for(0, s.N * s.OH, 1, [&](index_t lo, index_t hi) {
    WidthInterpolatedRows<T, true> cache(columns, s.C);
    index_t image = -1;
    for (index_t r = lo; r < hi; ++r) {
      const index_t n = r / s.OH, oh = r % s.OH;
      if (n != image) cache.start_plane(input + n * s.H * s.W * s.C, s.W);
      image = n;
      const LinearTap<T>& t = rows[oh];
      const T* top = cache.row(t.i0, t.i0 + t.step);
      const T* bottom = cache.row(t.i0 + t.step, t.i0);
      write_blocks(out + r * row_values, row_values, stream,
                   [&](T* dst, index_t i0, index_t len) { blend2(top + i0, bottom + i0, len, t.w0, t.w1, dst); });
    }
    if (stream) stream_fence();
  });
}

// Bicubic and the antialiased filters: an output row's window of input rows filtered along the
// height into one row of W pixels, then each output pixel's window of those pixels summed, tap by
// tap over the channels.
template <class T>
void filter_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  const resample::Filter filter = filter_of(p.mode);
  const TapTable<T> rows(row_axis(s, p), filter), columns(column_axis(s, p), filter);
  const index_t row_values = s.W * s.C;
  const auto add_scaled = sampling_loops<T>().add_scaled;
  parallel_for(0, s.N * s.OH, 1, [&](index_t lo, index_t hi) {
    std::vector<T> filtered(row_values);
    for (index_t r = lo; r < hi; ++r) {
      const index_t n = r / s.OH, oh = r % s.OH;
      const T* image = input + n * s.H * row_values;
      std::fill(filtered.begin(), filtered.end(), T(0));
      for (index_t j = 0; j < rows.count[oh]; ++j) {
        const T* row = image + rows.index[oh * rows.width + j] * row_values;
        add_scaled(row, row_values, rows.weight[oh * rows.width + j], filtered.data());
      }
      T* dst = out + r * s.OW * s.C;
      for (index_t ow = 0; ow < s.OW; ++ow) {
        T* pixel = dst + ow * s.C;
        std::fill(pixel, pixel + s.C, T(0));
        for (index_t j = 0; j < columns.count[ow]; ++j)
          add_scaled(filtered.data() + columns.index[ow * columns.width + j] * s.C, s.C,
                     columns.weight[ow * columns.width + j], pixel);
      }
    }
  });
}

// Nearest backward adds whole pixels along the forward's index map, in output order.
template <class T>
void nearest_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input) {
  const bool exact = p.mode == InterpolateMode::nearest_exact;
  const auto rows = nearest_taps(s.H, s.OH, p.scale_h, exact);
  const auto columns = nearest_taps(s.W, s.OW, p.scale_w, exact);
  for_each_channel_block(s.N, s.C, [&](const ChannelBlock& b) {
    T* dst = grad_input + b.n * s.H * s.W * s.C + b.first;
    const T* src = grad_out + b.n * s.OH * s.OW * s.C + b.first;
    zero_block(dst, s.H * s.W, s.C, b.count);
    for (index_t oh = 0; oh < s.OH; ++oh)
      for (index_t ow = 0; ow < s.OW; ++ow) {
        T* to = dst + (rows[oh] * s.W + columns[ow]) * s.C;
        const T* from = src + (oh * s.OW + ow) * s.C;
        for (index_t k = 0; k < b.count; ++k) to[k] += from[k];
      }
  });
}

// interpolate.cpp's separable_backward over pixels: an output row's gradient gathered along the
// width into its filtered row (each input column summing its readers), then spread along the
// height over the window's input rows.
template <class T>
void separable_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input) {
  const SeparableTaps<T> taps(s, p);
  const TapTable<T>& rows = taps.rows;
  const ReadersTable<T> readers(taps.columns, s.W);
  const auto add_scaled = sampling_loops<T>().add_scaled;
  for_each_channel_block(s.N, s.C, [&](const ChannelBlock& b) {
    std::vector<T> filtered(s.W * b.count);
    T* dst = grad_input + b.n * s.H * s.W * s.C + b.first;
    const T* g = grad_out + b.n * s.OH * s.OW * s.C + b.first;
    zero_block(dst, s.H * s.W, s.C, b.count);
    for (index_t oh = 0; oh < s.OH; ++oh) {
      const T* g_row = g + oh * s.OW * s.C;
      std::fill(filtered.begin(), filtered.end(), T(0));
      for (index_t x = 0; x < s.W; ++x) {
        T* f = filtered.data() + x * b.count;
        for (index_t r = readers.start[x]; r < readers.start[x + 1]; ++r)
          add_scaled(g_row + readers.output[r] * s.C, b.count, readers.weight[r], f);
      }
      for (index_t j = 0; j < rows.count[oh]; ++j) {
        T* row = dst + rows.index[oh * rows.width + j] * s.W * s.C;
        const T w = rows.weight[oh * rows.width + j];
        for (index_t x = 0; x < s.W; ++x) add_scaled(filtered.data() + x * b.count, b.count, w, row + x * s.C);
      }
    }
  });
}

}  // namespace

template <class T>
void interpolate_forward_channels_last(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  if (s.N * s.C == 0) return;  // nothing to read or write; the tap tables could be far too large
  if (p.mode == InterpolateMode::nearest || p.mode == InterpolateMode::nearest_exact)
    nearest_forward(s, p, input, out);
  else if (p.mode == InterpolateMode::bilinear)
    bilinear_forward(s, p, input, out);
  else
    filter_forward(s, p, input, out);
}

template <class T>
void interpolate_backward_channels_last(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out,
                                        T* grad_input) {
  if (s.N * s.C == 0) return;
  if (p.mode == InterpolateMode::nearest || p.mode == InterpolateMode::nearest_exact)
    nearest_backward(s, p, grad_out, grad_input);
  else
    separable_backward(s, p, grad_out, grad_input);
}

#define FASTCONV_INSTANTIATE(T)                                                                                   \
  template void interpolate_forward_channels_last<T>(const InterpolateShape&, const InterpolateParams&, const T*, \
                                                     T*);                                                        \
  template void interpolate_backward_channels_last<T>(const InterpolateShape&, const InterpolateParams&,         \
                                                      const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::sampling::cpu
