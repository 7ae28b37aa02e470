// interpolate forward and backward for NCHW (ATen UpSample semantics): bilinear and nearest
// here, bicubic and the antialiased modes as separable filters over common/resample_filters.h's
// windows.
//
// Source indices and weights depend on the output column or row only: they are computed once
// per call (one tap per output column, one per output row) and reused by every plane. Planes are
// independent, so the work is split by (image, channel) plane; in backward each gradient plane
// has one writer (race-free, deterministic).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/errors.h"
#include "core/parallel.h"
#include "core/stream_store.h"
#include "sampling/cpu/interpolate.h"
#include "sampling/cpu/interpolate_taps.h"

namespace fastconv::sampling::cpu {

namespace {

template <class T>
void bilinear_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  const auto rows = linear_taps<T>(s.H, s.OH, p.align_corners, p.scale_h);
  const auto columns = linear_taps<T>(s.W, s.OW, p.align_corners, p.scale_w);
  const auto blend2 = sampling_loops<T>().blend2;
  // An upsampled output is several times its input: streamed past the cache when large
  const bool stream = stream_output(static_cast<std::size_t>(s.N * s.C * s.OH * s.OW) * sizeof(T));
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    WidthInterpolatedRows<T> cache(columns);
    for (index_t plane = lo; plane < hi; ++plane) {
      cache.start_plane(input + plane * s.H * s.W, s.W);
      for (index_t oh = 0; oh < s.OH; ++oh) {
        const LinearTap<T>& r = rows[oh];
        const T* top = cache.row(r.i0, r.i0 + r.step);
        const T* bottom = cache.row(r.i0 + r.step, r.i0);
        write_blocks(out + (plane * s.OH + oh) * s.OW, s.OW, stream,
                     [&](T* dst, index_t i0, index_t len) { blend2(top + i0, bottom + i0, len, r.w0, r.w1, dst); });
      }
    }
    if (stream) stream_fence();
  });
}

// Nearest forward copies along the (output -> input) index map: each output row gathered from
// its input row, or copied from the row before when both read the same input row (upsampling).
template <class T>
void nearest_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  const bool exact = p.mode == InterpolateMode::nearest_exact;
  const auto rows = nearest_taps(s.H, s.OH, p.scale_h, exact);
  const auto columns = nearest_taps(s.W, s.OW, p.scale_w, exact);
  const GatherTable<T> gathers = nearest_gathers<T>(columns);
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    for (index_t plane = lo; plane < hi; ++plane) {
      T* dst = out + plane * s.OH * s.OW;
      for (index_t oh = 0; oh < s.OH; ++oh, dst += s.OW) {
        if (oh > 0 && rows[oh] == rows[oh - 1])
          std::memcpy(dst, dst - s.OW, sizeof(T) * s.OW);
        else
          gathers.gather(input + (plane * s.H + rows[oh]) * s.W, dst);
      }
    }
  });
}

// Nearest backward adds each output row's gradient into its input row along the same map, each
// input column gathering its readers in output order (the order of a scatter in output order).
template <class T>
void nearest_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input) {
  const bool exact = p.mode == InterpolateMode::nearest_exact;
  const auto rows = nearest_taps(s.H, s.OH, p.scale_h, exact);
  const GatherTable<T> readers = nearest_readers<T>(nearest_taps(s.W, s.OW, p.scale_w, exact), s.W);
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    for (index_t plane = lo; plane < hi; ++plane) {
      T* dst = grad_input + plane * s.H * s.W;
      std::memset(dst, 0, sizeof(T) * s.H * s.W);
      for (index_t oh = 0; oh < s.OH; ++oh)
        readers.add(grad_out + (plane * s.OH + oh) * s.OW, dst + rows[oh] * s.W);
    }
  });
}

// sum_i wx_i * (sum_j wy_j * x): each output row's window of input rows filtered along the
// height into one row of W, then that row filtered along the width. The scratch is one row,
// whatever the sizes (a width-first order would hold up to H x W_out of filtered rows).
template <class T>
void filter_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  const resample::Filter filter = filter_of(p.mode);
  const TapTable<T> rows(row_axis(s, p), filter);
  const GatherTable<T> column_gathers = gather_table(TapTable<T>(column_axis(s, p), filter));
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    std::vector<T> filtered(s.W);
    for (index_t plane = lo; plane < hi; ++plane) {
      const T* src = input + plane * s.H * s.W;
      T* dst = out + plane * s.OH * s.OW;
      for (index_t oh = 0; oh < s.OH; ++oh) {
        // tap by tap over whole rows (vectorised): each column's sum adds its taps in tap order
        std::fill(filtered.begin(), filtered.end(), T(0));
        for (index_t j = 0; j < rows.count[oh]; ++j) {
          const T* row = src + rows.index[oh * rows.width + j] * s.W;
          const T w = rows.weight[oh * rows.width + j];
          for (index_t x = 0; x < s.W; ++x) filtered[x] += row[x] * w;
        }
        std::fill(dst + oh * s.OW, dst + (oh + 1) * s.OW, T(0));
        column_gathers.add(filtered.data(), dst + oh * s.OW);
      }
    }
  });
}

// The forward's transpose, row by row: an output row's gradient gathered along the width into
// its filtered row's gradient (each input column summing its readers), then spread along the
// height over the window's input rows, whole rows at a time (vectorised). Each plane has one
// writer (race-free, deterministic). Bilinear's backward runs here too: summing per output row
// first does a third of the adds of PyTorch's four-corner order, so its float rounding differs
// from PyTorch's in the last bits.
template <class T>
void separable_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input) {
  const SeparableTaps<T> taps(s, p);
  const TapTable<T>& rows = taps.rows;
  const GatherTable<T> column_readers = gather_table(ReadersTable<T>(taps.columns, s.W));
  const auto add_scaled = sampling_loops<T>().add_scaled;
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    std::vector<T> filtered(s.W);
    for (index_t plane = lo; plane < hi; ++plane) {
      const T* g = grad_out + plane * s.OH * s.OW;
      T* dst = grad_input + plane * s.H * s.W;
      std::memset(dst, 0, sizeof(T) * s.H * s.W);
      for (index_t oh = 0; oh < s.OH; ++oh) {
        std::fill(filtered.begin(), filtered.end(), T(0));
        column_readers.add(g + oh * s.OW, filtered.data());
        for (index_t j = 0; j < rows.count[oh]; ++j)
          add_scaled(filtered.data(), s.W, rows.weight[oh * rows.width + j], dst + rows.index[oh * rows.width + j] * s.W);
      }
    }
  });
}

// The gathers along a row index it with int32 lanes.
void check_gather_rows(const InterpolateShape& s) {
  constexpr index_t kMost = std::numeric_limits<std::int32_t>::max();
  if (s.W > kMost || s.OW > kMost)
    fail<ValueError>("input: NCHW rows of at most ", kMost, " values expected (W ", s.W, ", W_out ", s.OW,
                     "); a channels_last array has no such limit");
}

}  // namespace

template <class T>
void interpolate_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  if (s.N * s.C == 0) return;  // no planes: an empty batch's output sizes may be far too large for tap tables
  check_gather_rows(s);
  if (p.mode == InterpolateMode::nearest || p.mode == InterpolateMode::nearest_exact)
    nearest_forward(s, p, input, out);
  else if (p.mode == InterpolateMode::bilinear)
    bilinear_forward(s, p, input, out);
  else
    filter_forward(s, p, input, out);
}

template <class T>
void interpolate_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input) {
  if (s.N * s.C == 0) return;
  check_gather_rows(s);
  if (p.mode == InterpolateMode::nearest || p.mode == InterpolateMode::nearest_exact)
    nearest_backward(s, p, grad_out, grad_input);
  else
    separable_backward(s, p, grad_out, grad_input);
}

#define FASTCONV_INSTANTIATE(T)                                                                                 \
  template void interpolate_forward<T>(const InterpolateShape&, const InterpolateParams&, const T*, T*); \
  template void interpolate_backward<T>(const InterpolateShape&, const InterpolateParams&, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::sampling::cpu
