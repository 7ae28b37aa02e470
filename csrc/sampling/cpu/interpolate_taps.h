// The source taps of interpolate's kernels, shared by the NCHW kernels (interpolate.cpp) and the
// channels_last ones (interpolate_channels_last.cpp): computed once per call, one per output
// column and one per output row, and reused by every plane or image.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/bilinear.h"
#include "common/resample_filters.h"
#include "sampling/cpu/sampling_loops.h"
#include "sampling/sampling.h"

namespace fastconv::sampling::cpu {

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
inline std::vector<index_t> nearest_taps(index_t in, index_t out, double scale_factor, bool exact) {
  std::vector<index_t> taps(out);
  for (index_t i = 0; i < out; ++i)
    taps[i] = exact ? bilinear::nearest_exact_source_index(i, in, out, scale_factor)
                    : bilinear::nearest_source_index(i, in, out, scale_factor);
  return taps;
}

// Taps along a row as sampling_loops.h's gathers read them: `taps` per value, tap k of value i
// at [k * n + i], padded with index -1 (read as nothing) and weight 0 where a value has fewer,
// and each tap's window per whole vector of the active ISA's lanes. Indices are int32 (the
// gathers' lanes): the kernels check_gather_rows() first. Built by the gather_table overloads,
// nearest_gathers and nearest_readers below, which set every tap, then plan_windows(): inside
// the kernel call that uses the table, whose ISA (and so its vectors' lanes) cannot change.
template <class T>
struct GatherTable {
  index_t taps = 0, n = 0;
  std::vector<std::int32_t> index;
  std::vector<T> weight;
  std::vector<GatherWindow> windows;

  GatherTable() = default;
  GatherTable(index_t taps, index_t n) : taps(taps), n(n), index(taps * n, -1), weight(taps * n, T(0)) {}

  void set(index_t k, index_t i, index_t at, T w) {
    index[k * n + i] = static_cast<std::int32_t>(at);
    weight[k * n + i] = w;
  }

  // The span of the indices each vector of each tap reads, a window where it is at most two
  // vectors wide (an empty one where every lane is padding).
  void plan_windows() {
    const index_t lanes = sampling_loops<T>().lanes;
    if (lanes <= 1) return;
    const index_t blocks = n / lanes;
    windows.assign(taps * blocks, GatherWindow{});
    for (index_t k = 0; k < taps; ++k)
      for (index_t b = 0; b < blocks; ++b) {
        std::int32_t lo = std::numeric_limits<std::int32_t>::max(), hi = -1;
        for (index_t l = 0; l < lanes; ++l) {
          const std::int32_t at = index[k * n + b * lanes + l];
          if (at < 0) continue;
          lo = std::min(lo, at);
          hi = std::max(hi, at);
        }
        GatherWindow& w = windows[k * blocks + b];
        if (hi < 0) w = GatherWindow{0, 0};
        else if (hi - lo < 2 * lanes) w = GatherWindow{lo, hi - lo + 1};
      }
  }

  // dst[i] = src's taps of value i (gather_blend2: two taps), or dst[i] += them (gather_add), or
  // dst[i] = its one tap's value (gather)
  void blend2(const T* src, T* dst) const {
    sampling_loops<T>().gather_blend2(src, index.data(), weight.data(), windows.data(), n, dst);
  }
  void add(const T* src, T* dst) const {
    sampling_loops<T>().gather_add(src, index.data(), weight.data(), windows.data(), taps, n, dst);
  }
  void gather(const T* src, T* dst) const { sampling_loops<T>().gather(src, index.data(), windows.data(), n, dst); }
};

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
};

// TapTable's windows (a filter along the width) as a GatherTable.
template <class T>
GatherTable<T> gather_table(const TapTable<T>& taps) {
  GatherTable<T> table(taps.width, static_cast<index_t>(taps.count.size()));
  for (index_t o = 0; o < table.n; ++o)
    for (index_t j = 0; j < taps.count[o]; ++j) table.set(j, o, taps.index[o * taps.width + j], taps.weight[o * taps.width + j]);
  table.plan_windows();
  return table;
}

// nearest's columns (its forward's gather along the width): output column o reads `columns[o]`.
template <class T>
GatherTable<T> nearest_gathers(const std::vector<index_t>& columns) {
  GatherTable<T> table(1, static_cast<index_t>(columns.size()));
  for (index_t o = 0; o < table.n; ++o) table.set(0, o, columns[o], T(1));
  table.plan_windows();
  return table;
}

// nearest's columns turned around (its backward's gather along the width): input column x's
// readers, the output columns `columns` maps to x, in output order, each with weight 1.
template <class T>
GatherTable<T> nearest_readers(const std::vector<index_t>& columns, index_t inputs) {
  std::vector<index_t> count(inputs, 0);
  for (index_t c : columns) ++count[c];
  GatherTable<T> table(inputs ? *std::max_element(count.begin(), count.end()) : 0, inputs);
  std::fill(count.begin(), count.end(), 0);
  for (index_t o = 0; o < static_cast<index_t>(columns.size()); ++o) table.set(count[columns[o]]++, columns[o], o, T(1));
  table.plan_windows();
  return table;
}

// ReadersTable's readers (the backward's gather along the width) as a GatherTable.
template <class T>
GatherTable<T> gather_table(const ReadersTable<T>& readers) {
  const index_t inputs = static_cast<index_t>(readers.start.size()) - 1;
  index_t most = 0;
  for (index_t i = 0; i < inputs; ++i) most = std::max(most, readers.start[i + 1] - readers.start[i]);
  GatherTable<T> table(most, inputs);
  for (index_t i = 0; i < inputs; ++i)
    for (index_t r = readers.start[i]; r < readers.start[i + 1]; ++r)
      table.set(r - readers.start[i], i, readers.output[r], readers.weight[r]);
  table.plan_windows();
  return table;
}

// Input rows interpolated along the width, two at a time: an output row blends two of them,
// and neighbouring output rows mostly share theirs, so each is computed about once per plane.
// The blend (x0 * w0 + x1 * w1) * h0 + (...) * h1 is PyTorch's order of operations.
// kChannelsLast: a pixel is `channels` adjacent values (NHWC), blended together (sampling_loops.h);
// otherwise one value (an NCHW plane), the loop over channels compiled away.
template <class T, bool kChannelsLast = false>
class WidthInterpolatedRows {
 public:
  explicit WidthInterpolatedRows(const std::vector<LinearTap<T>>& columns, index_t channels = 1)
      : columns_(columns), channels_(kChannelsLast ? channels : 1), buffer_(2 * columns.size() * channels_) {
    if constexpr (!kChannelsLast) gathers_ = gather_table(TapTable<T>(columns));
  }

  void start_plane(const T* plane, index_t width) {
    plane_ = plane;
    width_ = width;
    row_[0] = row_[1] = -1;
  }

  // Row y of the plane (an NCHW plane of `width` values a row, or an NHWC image of `width`
  // pixels a row), keeping row `keep` (the other row the caller holds) cached.
  const T* row(index_t y, index_t keep) {
    for (int slot = 0; slot < 2; ++slot)
      if (row_[slot] == y) return slot_data(slot);
    const int slot = row_[0] == keep ? 1 : 0;
    row_[slot] = y;
    T* out = slot_data(slot);
    const index_t count = static_cast<index_t>(columns_.size());
    if constexpr (kChannelsLast) {
      sampling_loops<T>().width_blend(plane_ + y * width_ * channels_, columns_.data(), count, channels_, out);
    } else {
      gathers_.blend2(plane_ + y * width_, out);
    }
    return out;
  }

 private:
  T* slot_data(int slot) { return buffer_.data() + slot * columns_.size() * channels_; }

  const std::vector<LinearTap<T>>& columns_;
  GatherTable<T> gathers_;  // NCHW: the columns' taps
  index_t channels_;
  std::vector<T> buffer_;
  const T* plane_ = nullptr;
  index_t width_ = 0;
  index_t row_[2] = {-1, -1};
};

inline resample::Filter filter_of(InterpolateMode mode) {
  switch (mode) {
    case InterpolateMode::bicubic: return resample::Filter::cubic;
    case InterpolateMode::bilinear_antialias: return resample::Filter::antialiased_linear;
    default: return resample::Filter::antialiased_cubic;
  }
}

inline resample::ResizeAxis row_axis(const InterpolateShape& s, const InterpolateParams& p) {
  return {s.H, s.OH, p.scale_h, p.align_corners};
}
inline resample::ResizeAxis column_axis(const InterpolateShape& s, const InterpolateParams& p) {
  return {s.W, s.OW, p.scale_w, p.align_corners};
}

// The row and column taps of a separable backward: bilinear's two taps a pixel, or the window
// of bicubic or an antialiased filter.
template <class T>
struct SeparableTaps {
  TapTable<T> rows, columns;

  SeparableTaps(const InterpolateShape& s, const InterpolateParams& p)
      : rows(p.mode == InterpolateMode::bilinear ? TapTable<T>(linear_taps<T>(s.H, s.OH, p.align_corners, p.scale_h))
                                                 : TapTable<T>(row_axis(s, p), filter_of(p.mode))),
        columns(p.mode == InterpolateMode::bilinear
                    ? TapTable<T>(linear_taps<T>(s.W, s.OW, p.align_corners, p.scale_w))
                    : TapTable<T>(column_axis(s, p), filter_of(p.mode))) {}
};

}  // namespace fastconv::sampling::cpu
