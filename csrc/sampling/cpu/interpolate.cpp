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

#include "common/bilinear.h"
#include "common/resample_filters.h"
#include "core/parallel.h"
#include "sampling/cpu/interpolate.h"

namespace fastconv::sampling::cpu {

namespace {

using bilinear::LinearTap;

template <class T>
std::vector<LinearTap<T>> linear_taps(index_t in, index_t out, bool align_corners, double scale_factor) {
  const T scale = bilinear::area_scale<T>(in, out, align_corners, scale_factor);
  std::vector<LinearTap<T>> taps(out);
  // A size that does not change is a copy in PyTorch (compute_source_index_and_lambda): the tap
  // reads its own pixel twice, so that a NaN neighbour at weight 0 does not leak in.
  for (index_t i = 0; i < out; ++i)
    taps[i] = in == out ? LinearTap<T>{i, 0, T(1), T(0)} : bilinear::linear_tap(scale, i, in, align_corners);
  return taps;
}

// exact: "nearest-exact"'s rule (pixel centres) in place of the legacy "nearest" one.
std::vector<index_t> nearest_taps(index_t in, index_t out, double scale_factor, bool exact) {
  std::vector<index_t> taps(out);
  for (index_t i = 0; i < out; ++i)
    taps[i] = exact ? bilinear::nearest_exact_source_index(i, in, out, scale_factor)
                    : bilinear::nearest_source_index(i, in, out, scale_factor);
  return taps;
}

// Input rows interpolated along the width, two at a time: an output row blends two of them,
// and neighbouring output rows mostly share theirs, so each is computed about once per plane.
// The blend (x0 * w0 + x1 * w1) * h0 + (...) * h1 is PyTorch's order of operations.
template <class T>
class WidthInterpolatedRows {
 public:
  WidthInterpolatedRows(const std::vector<LinearTap<T>>& columns) : columns_(columns), buffer_(2 * columns.size()) {}

  void start_plane(const T* plane, index_t width) {
    plane_ = plane;
    width_ = width;
    row_[0] = row_[1] = -1;
  }

  // Row y, keeping row `keep` (the other row the caller holds) cached.
  const T* row(index_t y, index_t keep) {
    for (int slot = 0; slot < 2; ++slot)
      if (row_[slot] == y) return slot_data(slot);
    const int slot = row_[0] == keep ? 1 : 0;
    row_[slot] = y;
    T* out = slot_data(slot);
    const T* src = plane_ + y * width_;
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      const LinearTap<T>& c = columns_[i];
      out[i] = src[c.i0] * c.w0 + src[c.i0 + c.step] * c.w1;
    }
    return out;
  }

 private:
  T* slot_data(int slot) { return buffer_.data() + slot * columns_.size(); }

  const std::vector<LinearTap<T>>& columns_;
  std::vector<T> buffer_;
  const T* plane_ = nullptr;
  index_t width_ = 0;
  index_t row_[2] = {-1, -1};
};

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

// Every output pixel's window along one axis, as flat tables of `width` taps per pixel.
template <class T>
struct TapTable {
  index_t width = 0;
  std::vector<index_t> count, index;
  std::vector<T> weight;

  TapTable(const resample::ResizeAxis& axis, resample::Filter filter)
      : width(resample::widest_window<T>(axis, filter)), count(axis.out), index(axis.out * width),
        weight(axis.out * width) {
    for (index_t o = 0; o < axis.out; ++o) {
      const resample::Window<T> w = resample::window<T>(axis, filter, o);
      count[o] = w.count;
      for (index_t j = 0; j < w.count; ++j) {
        index[o * width + j] = w.index(j);
        weight[o * width + j] = w.weight(j);
      }
    }
  }

  // bilinear's two taps per pixel (i0 and i0 + step, step 0 where the size does not change)
  explicit TapTable(const std::vector<LinearTap<T>>& taps)
      : width(2), count(taps.size(), 2), index(2 * taps.size()), weight(2 * taps.size()) {
    for (std::size_t o = 0; o < taps.size(); ++o) {
      index[2 * o] = taps[o].i0;
      index[2 * o + 1] = taps[o].i0 + taps[o].step;
      weight[2 * o] = taps[o].w0;
      weight[2 * o + 1] = taps[o].w1;
    }
  }

  // sum over output pixel o's taps of weight * at(index), in tap order
  template <class At>
  T apply(index_t o, At at) const {
    T sum = 0;
    for (index_t j = 0; j < count[o]; ++j) sum += at(index[o * width + j]) * weight[o * width + j];
    return sum;
  }
};

// A TapTable turned around: for each input pixel, the output pixels whose taps read it and
// those taps' weights, in output order (a pixel's taps in tap order). Summing these is the
// backward's scatter of the output gradient as a gather: the same adds in the same order, so the
// same bits, without a chain of read-modify-writes through memory.
template <class T>
struct ReadersTable {
  std::vector<index_t> start, output;  // input pixel i's readers: output[start[i]], ..., output[start[i + 1] - 1]
  std::vector<T> weight;

  ReadersTable(const TapTable<T>& taps, index_t inputs) : start(inputs + 1, 0) {
    const index_t outputs = static_cast<index_t>(taps.count.size());
    for (index_t o = 0; o < outputs; ++o)
      for (index_t j = 0; j < taps.count[o]; ++j) ++start[taps.index[o * taps.width + j] + 1];
    for (index_t i = 0; i < inputs; ++i) start[i + 1] += start[i];
    output.resize(start[inputs]);
    weight.resize(start[inputs]);
    std::vector<index_t> next(start.begin(), start.end() - 1);
    for (index_t o = 0; o < outputs; ++o)
      for (index_t j = 0; j < taps.count[o]; ++j) {
        const index_t at = next[taps.index[o * taps.width + j]]++;
        output[at] = o;
        weight[at] = taps.weight[o * taps.width + j];
      }
  }

  // sum over the readers of input pixel i of gradient[output] * weight, in output order
  T gather(index_t i, const T* gradient) const {
    T sum = 0;
    for (index_t k = start[i]; k < start[i + 1]; ++k) sum += gradient[output[k]] * weight[k];
    return sum;
  }
};

resample::Filter filter_of(InterpolateMode mode) {
  switch (mode) {
    case InterpolateMode::bicubic: return resample::Filter::cubic;
    case InterpolateMode::bilinear_antialias: return resample::Filter::antialiased_linear;
    default: return resample::Filter::antialiased_cubic;
  }
}

resample::ResizeAxis row_axis(const InterpolateShape& s, const InterpolateParams& p) {
  return {s.H, s.OH, p.scale_h, p.align_corners};
}
resample::ResizeAxis column_axis(const InterpolateShape& s, const InterpolateParams& p) {
  return {s.W, s.OW, p.scale_w, p.align_corners};
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
void separable_backward(const InterpolateShape& s, const TapTable<T>& rows, const TapTable<T>& columns,
                        const T* grad_out, T* grad_input) {
  const ReadersTable<T> column_readers(columns, s.W);
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

template <class T>
void filter_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input) {
  const resample::Filter filter = filter_of(p.mode);
  separable_backward(s, TapTable<T>(row_axis(s, p), filter), TapTable<T>(column_axis(s, p), filter), grad_out,
                     grad_input);
}

template <class T>
void bilinear_backward(const InterpolateShape& s, const InterpolateParams& p, const T* grad_out, T* grad_input) {
  separable_backward(s, TapTable<T>(linear_taps<T>(s.H, s.OH, p.align_corners, p.scale_h)),
                     TapTable<T>(linear_taps<T>(s.W, s.OW, p.align_corners, p.scale_w)), grad_out, grad_input);
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
  else if (p.mode == InterpolateMode::bilinear)
    bilinear_backward(s, p, grad_out, grad_input);
  else
    filter_backward(s, p, grad_out, grad_input);
}

#define FASTCONV_INSTANTIATE(T)                                                                                 \
  template void interpolate_forward<T>(const InterpolateShape&, const InterpolateParams&, const T*, T*); \
  template void interpolate_backward<T>(const InterpolateShape&, const InterpolateParams&, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::sampling::cpu
