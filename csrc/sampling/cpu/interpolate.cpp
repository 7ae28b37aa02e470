// interpolate forward and backward for NCHW (ATen UpSample semantics): bilinear and nearest
// here, bicubic and the antialiased modes as separable filters over common/resample_filters.h's
// windows.
//
// Source indices and weights depend on the output column or row only: they are computed once
// per call (one tap per output column, one per output row) and reused by every plane. Planes are
// independent, so the work is split by (image, channel) plane; in backward each gradient plane
// has one writer (race-free, deterministic).
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "sampling/cpu/interpolate.h"
#include "sampling/cpu/interpolate_taps.h"

namespace fastconv::sampling::cpu {

namespace {

template <class T>
void bilinear_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  const auto rows = linear_taps<T>(s.H, s.OH, p.align_corners, p.scale_h);
  const auto columns = linear_taps<T>(s.W, s.OW, p.align_corners, p.scale_w);
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    WidthInterpolatedRows<T> cache(columns);
    for (index_t plane = lo; plane < hi; ++plane) {
      cache.start_plane(input + plane * s.H * s.W, s.W);
      for (index_t oh = 0; oh < s.OH; ++oh) {
        const LinearTap<T>& r = rows[oh];
        const T* top = cache.row(r.i0, r.i0 + r.step);
        const T* bottom = cache.row(r.i0 + r.step, r.i0);
        T* dst = out + (plane * s.OH + oh) * s.OW;
        for (index_t ow = 0; ow < s.OW; ++ow) dst[ow] = top[ow] * r.w0 + bottom[ow] * r.w1;
      }
    }
  });
}

// Nearest forward copies and backward adds along the same (output -> input) index map.
template <bool kBackward, class T>
void nearest_pass(const InterpolateShape& s, const InterpolateParams& p, const T* from, T* to) {
  const bool exact = p.mode == InterpolateMode::nearest_exact;
  const auto rows = nearest_taps(s.H, s.OH, p.scale_h, exact);
  const auto columns = nearest_taps(s.W, s.OW, p.scale_w, exact);
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    for (index_t plane = lo; plane < hi; ++plane) {
      if (kBackward) std::memset(to + plane * s.H * s.W, 0, sizeof(T) * s.H * s.W);
      for (index_t oh = 0; oh < s.OH; ++oh) {
        const index_t in_row = (plane * s.H + rows[oh]) * s.W, out_row = (plane * s.OH + oh) * s.OW;
        for (index_t ow = 0; ow < s.OW; ++ow) {
          if (kBackward)
            to[in_row + columns[ow]] += from[out_row + ow];
          else
            to[out_row + ow] = from[in_row + columns[ow]];
        }
      }
    }
  });
}

// sum_i wx_i * (sum_j wy_j * x): each output row's window of input rows filtered along the
// height into one row of W, then that row filtered along the width. The scratch is one row,
// whatever the sizes (a width-first order would hold up to H x W_out of filtered rows).
template <class T>
void filter_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  const resample::Filter filter = filter_of(p.mode);
  const TapTable<T> rows(row_axis(s, p), filter), columns(column_axis(s, p), filter);
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
        for (index_t ow = 0; ow < s.OW; ++ow)
          dst[oh * s.OW + ow] = columns.apply(ow, [&](index_t x) { return filtered[x]; });
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
  const ReadersTable<T> column_readers(taps.columns, s.W);
  parallel_for(0, s.N * s.C, 1, [&](index_t lo, index_t hi) {
    std::vector<T> filtered(s.W);
    for (index_t plane = lo; plane < hi; ++plane) {
      const T* g = grad_out + plane * s.OH * s.OW;
      T* dst = grad_input + plane * s.H * s.W;
      std::memset(dst, 0, sizeof(T) * s.H * s.W);
      for (index_t oh = 0; oh < s.OH; ++oh) {
        for (index_t x = 0; x < s.W; ++x) filtered[x] = column_readers.gather(x, g + oh * s.OW);
        for (index_t j = 0; j < rows.count[oh]; ++j) {
          T* row = dst + rows.index[oh * rows.width + j] * s.W;
          const T w = rows.weight[oh * rows.width + j];
          for (index_t x = 0; x < s.W; ++x) row[x] += w * filtered[x];
        }
      }
    }
  });
}

}  // namespace

template <class T>
void interpolate_forward(const InterpolateShape& s, const InterpolateParams& p, const T* input, T* out) {
  if (s.N * s.C == 0) return;  // no planes: an empty batch's output sizes may be far too large for tap tables
  if (p.mode == InterpolateMode::nearest || p.mode == InterpolateMode::nearest_exact)
    nearest_pass<false>(s, p, input, out);
  else if (p.mode == InterpolateMode::bilinear)
    bilinear_forward(s, p, input, out);
  else
    filter_forward(s, p, input, out);
}

template <class T>
void interpolate_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input) {
  if (s.N * s.C == 0) return;
  if (p.mode == InterpolateMode::nearest || p.mode == InterpolateMode::nearest_exact)
    nearest_pass<true>(s, p, grad_out, grad_input);
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
