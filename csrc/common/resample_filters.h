// The filter windows of interpolate's wider modes, with PyTorch's semantics (ATen/native/
// UpSample.h and UpSampleKernel.cpp): "bicubic" (upsample_bicubic2d: four taps of Keys' cubic
// convolution, a = -0.75, indices clamped to the image) and the antialiased "bilinear" and
// "bicubic" (_upsample_*2d_aa: PIL's filters, a triangle and a cubic with a = -0.5, stretched by
// the scale when downsampling so that every input pixel contributes, cut to the image and
// normalised to sum 1). One axis at a time: an output pixel's value is the sum over its row
// window of the row's weight times the sum over its column window (separable filters).
//
// The CPU kernel (sampling/cpu/interpolate.cpp) tabulates these windows; the CUDA kernel's
// threads (sampling/cuda/interpolate_body.h) compute theirs: the same code.
#pragma once
#include "common/bilinear.h"
#include "common/c_headers.h"
#include "common/host_device.h"

namespace fastconv::resample {

// One axis of a resize: `in` pixels to `out`, with the caller's scale factor (<= 0: none).
struct ResizeAxis {
  int64_t in, out;
  double scale_factor;
  bool align_corners;
};

enum class Filter { cubic = 0, antialiased_linear = 1, antialiased_cubic = 2 };

// Keys' cubic convolution kernel (Keys 1981, eq. 15) for |x| <= 1 and for 1 < |x| < 2.
template <class T>
FASTCONV_HD inline T cubic_near(T x, T a) {
  return ((a + 2) * x - (a + 3)) * x * x + 1;
}
template <class T>
FASTCONV_HD inline T cubic_far(T x, T a) {
  return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

// The antialiasing filters, of half-width 1 (triangle) and 2 (cubic).
template <class T>
FASTCONV_HD inline T antialias_filter(Filter f, T x) {
  x = x < 0 ? -x : x;
  if (f == Filter::antialiased_linear) return x < 1 ? 1 - x : T(0);
  const T a = T(-0.5);
  return x < 1 ? cubic_near(x, a) : (x < 2 ? cubic_far(x, a) : T(0));
}

// The input pixels one output pixel reads along an axis, and their weights: taps
// j = 0 .. count - 1 read index(j) with weight(j).
template <class T>
struct Window {
  Filter filter;
  int64_t first, count, in;
  // cubic: the fraction t between pixel first + 1 and first + 2.
  // antialiased: the filter's centre, its scale (1 / stretch) and the weights' sum.
  T t, center, invscale, total;

  FASTCONV_HD int64_t index(int64_t j) const {
    const int64_t i = first + j;
    return i < 0 ? 0 : (i > in - 1 ? in - 1 : i);  // only cubic windows reach outside
  }

  FASTCONV_HD T weight(int64_t j) const {
    if (filter != Filter::cubic) {
      const T w = antialias_filter(filter, (T(j + first) - center + T(0.5)) * invscale);
      return total != 0 ? w / total : w;
    }
    // get_cubic_upsample_coefficients, term by term in its expressions
    const T a = T(-0.75), t2 = 1 - t;
    switch (j) {
      case 0: return cubic_far(t + 1, a);
      case 1: return cubic_near(t, a);
      case 2: return cubic_near(t2, a);
      default: return cubic_far(t2 + 1, a);
    }
  }

  // The lowest and highest index the window reads (clamping repeats the border pixels).
  FASTCONV_HD int64_t lowest() const { return index(0); }
  FASTCONV_HD int64_t highest() const { return index(count - 1); }
};

// The widest window of a filter on an axis: ceil(support) * 2 + 1 taps when antialiased.
template <class T>
FASTCONV_HD inline T antialias_support(Filter f, T scale) {
  const T half = f == Filter::antialiased_linear ? T(1) : T(2);
  return scale >= 1 ? half * scale : half;
}

template <class T>
FASTCONV_HD inline int64_t widest_window(const ResizeAxis& a, Filter f) {
  if (f == Filter::cubic) return 4;
  if (a.in == a.out) return 1;
  const T scale = bilinear::area_scale<T>(a.in, a.out, a.align_corners, a.scale_factor);
  return static_cast<int64_t>(ceil(antialias_support(f, scale))) * 2 + 1;
}

// upsample_bicubic2d: the source coordinate without clamping, floored in float32 (floorf, as
// PyTorch's guard_index_and_lambda), four taps around it.
template <class T>
FASTCONV_HD inline Window<T> cubic_window(const ResizeAxis& a, int64_t dst) {
  const T scale = bilinear::area_scale<T>(a.in, a.out, a.align_corners, a.scale_factor);
  const T src = a.align_corners ? scale * T(dst) : fma(scale, T(dst) + T(0.5), T(-0.5));
  int64_t i = static_cast<int64_t>(floorf(static_cast<float>(src)));
  if (i > a.in - 1) i = a.in - 1;
  T t = src - T(i);
  t = t < 0 ? T(0) : (t > 1 ? T(1) : t);
  return {Filter::cubic, i - 1, 4, a.in, t, T(0), T(0), T(0)};
}

// _compute_weights_aa: the filter centred on the output pixel's centre, stretched by the scale
// when downsampling, cut to [0, in). A size that does not change is a copy (PyTorch skips that
// axis in its separable kernel, whatever the scale factor says).
template <class T>
FASTCONV_HD inline Window<T> antialiased_window(const ResizeAxis& a, Filter f, int64_t dst) {
  if (a.in == a.out) return {f, dst, 1, a.in, T(0), T(dst) + T(0.5), T(1), T(1)};
  const T scale = bilinear::area_scale<T>(a.in, a.out, a.align_corners, a.scale_factor);
  const T support = antialias_support(f, scale);
  const T center = scale * (T(dst) + T(0.5));
  const T invscale = scale >= 1 ? T(1) / scale : T(1);
  int64_t first = static_cast<int64_t>(center - support + T(0.5));
  first = first > 0 ? first : 0;
  int64_t last = static_cast<int64_t>(center + support + T(0.5));
  last = last < a.in ? last : a.in;
  int64_t count = last - first;
  const int64_t widest = static_cast<int64_t>(ceil(support)) * 2 + 1;
  count = count < 0 ? 0 : (count > widest ? widest : count);  // rounding can add one
  Window<T> w{f, first, count, a.in, T(0), center, invscale, T(0)};
  T total = 0;
  for (int64_t j = 0; j < count; ++j) total += w.weight(j);  // weight() divides by total once it is set
  w.total = total;
  return w;
}

template <class T>
FASTCONV_HD inline Window<T> window(const ResizeAxis& a, Filter f, int64_t dst) {
  return f == Filter::cubic ? cubic_window<T>(a, dst) : antialiased_window<T>(a, f, dst);
}

// The first output pixel along the axis whose window may read input pixel `at`: its lowest
// index is at least at - widest + 1. Lowest indices never decrease along an axis (bisection).
template <class T>
FASTCONV_HD inline int64_t first_window_reaching(const ResizeAxis& a, Filter f, int64_t at) {
  const int64_t from = at - widest_window<T>(a, f) + 1;
  int64_t lo = 0, hi = a.out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (window<T>(a, f, mid).lowest() < from) lo = mid + 1; else hi = mid;
  }
  return lo;
}

}  // namespace fastconv::resample
