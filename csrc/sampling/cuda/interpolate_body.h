// The per-thread bodies of sampling.cu's interpolate kernels, so that a CPU test runs each over
// the whole grid (tests/cuda/test_sampling_host.py). Taps are common/bilinear.h's, as the CPU
// kernel takes them (sampling/cpu/interpolate.cpp).
//
// The backward is a gather: a thread per input-gradient element sums the terms of the output
// pixels whose taps read it, in the CPU kernel's order (per output row, its columns' terms
// summed first, then weighted by the row's taps), so it needs no atomics and gives the CPU
// kernel's bits. Source indices
// never decrease as the output index grows, so those output pixels are a run per axis, found
// by bisection. The filter modes (bicubic, antialiased) run common/resample_filters.h's windows
// the same way: a gather over the output pixels whose windows read the element.
#pragma once
#include "common/bilinear.h"
#include "common/index.h"
#include "common/resample_filters.h"

namespace fastconv::sampling {

// interpolate's sizes and options (sampling/sampling.h's, mirrored for the device): mode 0
// bilinear, 1 nearest, 2 bicubic, 3 and 4 antialiased bilinear and bicubic, 5 nearest-exact;
// scale factors <= 0 mean input size / output size.
struct ResizeGeometry {
  index_t N, C, H, W, OH, OW;
  int mode;
  bool align_corners;
  double scale_h, scale_w;
};

using resample::ResizeAxis;

// The filter of modes 2 to 4 (sampling::InterpolateMode's order).
FASTCONV_HD inline bool is_filter(int mode) { return mode >= 2 && mode <= 4; }
FASTCONV_HD inline resample::Filter filter_of(int mode) { return static_cast<resample::Filter>(mode - 2); }
FASTCONV_HD inline bool is_nearest(int mode) { return mode == 1 || mode == 5; }

FASTCONV_HD inline ResizeAxis rows(const ResizeGeometry& g) { return {g.H, g.OH, g.scale_h, g.align_corners}; }
FASTCONV_HD inline ResizeAxis columns(const ResizeGeometry& g) { return {g.W, g.OW, g.scale_w, g.align_corners}; }

template <class T>
FASTCONV_HD inline bilinear::LinearTap<T> linear_tap(const ResizeAxis& a, index_t dst) {
  return bilinear::linear_tap(bilinear::area_scale<T>(a.in, a.out, a.align_corners, a.scale_factor), dst, a.in,
                              a.align_corners);
}

// exact: "nearest-exact"'s rule (mode 5) in place of the legacy one.
FASTCONV_HD inline index_t nearest_tap(const ResizeAxis& a, index_t dst, bool exact) {
  return exact ? bilinear::nearest_exact_source_index(dst, a.in, a.out, a.scale_factor)
               : bilinear::nearest_source_index(dst, a.in, a.out, a.scale_factor);
}

// Output pixel (oh, ow) of a filter mode: sum_i wx_i * (sum_j wy_j * x), the CPU kernel's
// nesting and order.
template <class T>
FASTCONV_HD inline T filter_forward_element(const ResizeGeometry& g, const T* plane, index_t oh, index_t ow) {
  const resample::Filter f = filter_of(g.mode);
  const resample::Window<T> r = resample::window<T>(rows(g), f, oh), c = resample::window<T>(columns(g), f, ow);
  T sum = 0;
  for (index_t i = 0; i < c.count; ++i) {
    const T* column = plane + c.index(i);
    T filtered = 0;
    for (index_t j = 0; j < r.count; ++j) filtered += column[r.index(j) * g.W] * r.weight(j);
    sum += filtered * c.weight(i);
  }
  return sum;
}

// Element i of out (N, C, OH, OW). Bilinear: the two rows blended along the width, then
// together, (x0 * w0 + x1 * w1) * h0 + (...) * h1 (PyTorch's order). Nearest: a copy.
template <class T>
FASTCONV_HD inline T interpolate_forward_element(const ResizeGeometry& g, const T* input, index_t i) {
  const index_t ow = i % g.OW, oh = i / g.OW % g.OH;
  const T* plane = input + i / (g.OW * g.OH) * g.H * g.W;
  if (is_filter(g.mode)) return filter_forward_element(g, plane, oh, ow);
  const bool exact = g.mode == 5;
  if (is_nearest(g.mode)) return plane[nearest_tap(rows(g), oh, exact) * g.W + nearest_tap(columns(g), ow, exact)];
  const bilinear::LinearTap<T> r = linear_tap<T>(rows(g), oh), c = linear_tap<T>(columns(g), ow);
  const T* top = plane + r.i0 * g.W;
  const T* bottom = top + r.step * g.W;
  const T upper = top[c.i0] * c.w0 + top[c.i0 + c.step] * c.w1;
  const T lower = bottom[c.i0] * c.w0 + bottom[c.i0 + c.step] * c.w1;
  return upper * r.w0 + lower * r.w1;
}

// The first output index along axis `a` whose source index (the tap's first, i0, or nearest's
// for the nearest modes) is at least `at`, by bisection: source indices never decrease along an
// axis.
template <class T>
FASTCONV_HD inline index_t first_output_reaching(const ResizeAxis& a, int mode, index_t at) {
  index_t lo = 0, hi = a.out;
  while (lo < hi) {
    const index_t mid = lo + (hi - lo) / 2;
    const index_t source = is_nearest(mode) ? nearest_tap(a, mid, mode == 5) : linear_tap<T>(a, mid).i0;
    if (source < at) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// The sum of the weights of window w's taps that read pixel `at` times `value`, tap by tap
// (a clamped cubic window reads a border pixel more than once), added to `sum` in tap order.
template <class T>
FASTCONV_HD inline T add_window_terms(const resample::Window<T>& w, index_t at, T value, T sum) {
  for (index_t j = 0; j < w.count; ++j)
    if (w.index(j) == at) sum += w.weight(j) * value;
  return sum;
}

// Element (h, w) of a plane of grad_input for a filter mode, the CPU kernel's terms in its
// order: over the output rows whose windows read h, the row's filtered gradient at w (the
// output columns whose windows read w, tap by tap) times the row's weights for h.
template <class T>
FASTCONV_HD inline T filter_backward_element(const ResizeGeometry& g, const T* go, index_t h, index_t w) {
  const resample::Filter f = filter_of(g.mode);
  const ResizeAxis ra = rows(g), ca = columns(g);
  const index_t ow_first = resample::first_window_reaching<T>(ca, f, w);
  T sum = 0;
  for (index_t oh = resample::first_window_reaching<T>(ra, f, h); oh < g.OH; ++oh) {
    const resample::Window<T> r = resample::window<T>(ra, f, oh);
    if (r.lowest() > h) break;
    if (r.highest() < h) continue;
    T filtered = 0;
    for (index_t ow = ow_first; ow < g.OW; ++ow) {
      const resample::Window<T> c = resample::window<T>(ca, f, ow);
      if (c.lowest() > w) break;
      filtered = add_window_terms(c, w, go[oh * g.OW + ow], filtered);
    }
    sum = add_window_terms(r, h, filtered, sum);
  }
  return sum;
}

// Element i of grad_input (N, C, H, W): the terms the CPU kernel adds into it, in its order.
template <class T>
FASTCONV_HD inline T interpolate_backward_element(const ResizeGeometry& g, const T* grad_output, index_t i) {
  const index_t w = i % g.W, h = i / g.W % g.H;
  const T* go = grad_output + i / (g.W * g.H) * g.OH * g.OW;
  if (is_filter(g.mode)) return filter_backward_element(g, go, h, w);
  const ResizeAxis ra = rows(g), ca = columns(g);
  T sum = 0;
  if (is_nearest(g.mode)) {
    const bool exact = g.mode == 5;
    for (index_t oh = first_output_reaching<T>(ra, g.mode, h); oh < g.OH && nearest_tap(ra, oh, exact) == h; ++oh)
      for (index_t ow = first_output_reaching<T>(ca, g.mode, w); ow < g.OW && nearest_tap(ca, ow, exact) == w; ++ow)
        sum += go[oh * g.OW + ow];
    return sum;
  }
  // A linear tap reads i0 and i0 + step (step 0 or 1): the output pixels reading h have i0 in
  // {h - 1, h}. The CPU kernel is separable (filter_backward_element's order with two taps):
  // each output row's gradient summed along the width first, then weighted by the row's taps.
  const index_t ow_first = first_output_reaching<T>(ca, g.mode, w - 1);
  for (index_t oh = first_output_reaching<T>(ra, g.mode, h - 1); oh < g.OH; ++oh) {
    const bilinear::LinearTap<T> r = linear_tap<T>(ra, oh);
    if (r.i0 > h) break;
    const bool top = r.i0 == h, bottom = r.i0 + r.step == h;
    if (!top && !bottom) continue;
    T filtered = 0;
    for (index_t ow = ow_first; ow < g.OW; ++ow) {
      const bilinear::LinearTap<T> c = linear_tap<T>(ca, ow);
      if (c.i0 > w) break;
      const T d = go[oh * g.OW + ow];
      if (c.i0 == w) filtered += c.w0 * d;
      if (c.i0 + c.step == w) filtered += c.w1 * d;
    }
    if (top) sum += r.w0 * filtered;
    if (bottom) sum += r.w1 * filtered;
  }
  return sum;
}

}  // namespace fastconv::sampling
