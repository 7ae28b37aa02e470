// The checked dispatch of the box utilities: every array checked against the shapes the others
// imply (dtype, shape, C-contiguity), the values a kernel would misread refused (non-finite
// scores, whose order is undefined; non-finite qualities), then the kernel of their dtype.
#include "boxes/boxes.h"

#include <cmath>

#include "boxes/cpu/box_ops.h"

namespace fastconv::boxes {

namespace {

// The number of rows of an (N, cols) array, before its dtype is known.
index_t rows_of(const TensorArg& a, const char* name, index_t cols, const char* layout) {
  if (a.ndim != 2 || a.shape[1] != cols) fail<ValueError>(name, ": expected a 2-d array ", layout, ", got shape ", shape_str(a));
  return a.shape[0];
}

template <class T>
const T* box_arg(const TensorArg& a, const char* name, index_t n) {
  return shaped_arg<const T>(a, name, "(N, 4) [x1, y1, x2, y2]", std::array<index_t, 2>{n, 4});
}

template <class T>
void check_finite(const T* values, index_t n, const char* name) {
  for (index_t i = 0; i < n; ++i)
    check(std::isfinite(values[i]), name, ": expected finite values, got ", values[i], " at index ", i);
}

}  // namespace

void box_iou(const TensorArg& boxes1, const TensorArg& boxes2, const TensorArg& out) {
  dispatch_float(boxes1, "boxes1", [&](auto tag) {
    using T = decltype(tag);
    const index_t n = rows_of(boxes1, "boxes1", 4, "(N, 4) [x1, y1, x2, y2]");
    const index_t m = rows_of(boxes2, "boxes2", 4, "(M, 4) [x1, y1, x2, y2]");
    const T* b1 = box_arg<T>(boxes1, "boxes1", n);
    const T* b2 = box_arg<T>(boxes2, "boxes2", m);
    T* o = shaped_arg<T>(out, "out", "(N, M)", std::array<index_t, 2>{n, m});
    cpu::box_iou<T>(b1, n, b2, m, o);
  });
}

std::int64_t nms(const TensorArg& boxes, const TensorArg& scores, const TensorArg& idxs, const TensorArg& keep,
                 double iou_threshold) {
  return dispatch_float(boxes, "boxes", [&](auto tag) {
    using T = decltype(tag);
    const index_t n = rows_of(boxes, "boxes", 4, "(N, 4) [x1, y1, x2, y2]");
    const T* b = box_arg<T>(boxes, "boxes", n);
    const T* s = vector_arg<const T>(scores, "scores", n);
    check(s != nullptr, "scores: expected an (N,) array");
    const std::int64_t* ids = vector_arg<const std::int64_t>(idxs, "idxs", n);
    std::int64_t* k = vector_arg<std::int64_t>(keep, "keep", n);
    check(k != nullptr, "keep: expected an (N,) int64 array");
    check(!std::isnan(iou_threshold), "iou_threshold: expected a number, got NaN");
    check_finite(s, n, "scores");
    check_finite(b, 4 * n, "boxes");
    return cpu::nms<T>(b, s, ids, n, T(iou_threshold), k);
  });
}

void encode_boxes(const TensorArg& reference, const TensorArg& proposals, const TensorArg& out,
                  const double weights[4]) {
  dispatch_float(reference, "reference_boxes", [&](auto tag) {
    using T = decltype(tag);
    const index_t n = rows_of(reference, "reference_boxes", 4, "(N, 4) [x1, y1, x2, y2]");
    const T* r = box_arg<T>(reference, "reference_boxes", n);
    const T* p = box_arg<T>(proposals, "proposals", n);
    T* o = shaped_arg<T>(out, "out", "(N, 4)", std::array<index_t, 2>{n, 4});
    cpu::encode_boxes<T>(r, p, n, weights, o);
  });
}

void decode_boxes(const TensorArg& deltas, const TensorArg& boxes, const TensorArg& out, const double weights[4],
                  double bbox_xform_clip) {
  dispatch_float(deltas, "rel_codes", [&](auto tag) {
    using T = decltype(tag);
    if (deltas.ndim != 2 || deltas.shape[1] % 4 != 0)
      fail<ValueError>("rel_codes: expected a 2-d array (N, 4k), got shape ", shape_str(deltas));
    const index_t n = deltas.shape[0], k = deltas.shape[1] / 4;
    const T* d = shaped_arg<const T>(deltas, "rel_codes", "(N, 4k)", std::array<index_t, 2>{n, 4 * k});
    const T* b = box_arg<T>(boxes, "boxes", n);
    T* o = shaped_arg<T>(out, "out", "(N, 4k)", std::array<index_t, 2>{n, 4 * k});
    cpu::decode_boxes<T>(d, b, n, k, weights, bbox_xform_clip, o);
  });
}

void grid_anchors(const TensorArg& sizes, const TensorArg& aspect_ratios, const TensorArg& out, std::int64_t H,
                  std::int64_t W, double stride_y, double stride_x) {
  dispatch_float(sizes, "sizes", [&](auto tag) {
    using T = decltype(tag);
    if (sizes.ndim != 1 || aspect_ratios.ndim != 1)
      fail<ValueError>("sizes, aspect_ratios: expected 1-d arrays, got shapes ", shape_str(sizes), " and ",
                       shape_str(aspect_ratios));
    const index_t num_sizes = sizes.shape[0], num_ratios = aspect_ratios.shape[0];
    const T* s = vector_arg<const T>(sizes, "sizes", num_sizes);
    const T* r = vector_arg<const T>(aspect_ratios, "aspect_ratios", num_ratios);
    for (index_t i = 0; i < num_sizes; ++i)
      check(std::isfinite(s[i]) && s[i] > 0, "sizes: expected positive finite sizes, got ", s[i]);
    for (index_t i = 0; i < num_ratios; ++i)
      check(std::isfinite(r[i]) && r[i] > 0, "aspect_ratios: expected positive finite ratios, got ", r[i]);
    check(H >= 0 && W >= 0, "feature size: expected non-negative sizes, got ", H, " x ", W);
    T* o = shaped_arg<T>(out, "out", "(H * W * A, 4)", std::array<index_t, 2>{H * W * num_sizes * num_ratios, 4});
    cpu::grid_anchors<T>(s, num_sizes, r, num_ratios, H, W, stride_y, stride_x, o);
  });
}

void match_boxes(const TensorArg& quality, const TensorArg& matches, double high_threshold, double low_threshold,
                 bool allow_low_quality_matches) {
  dispatch_float(quality, "match_quality_matrix", [&](auto tag) {
    using T = decltype(tag);
    if (quality.ndim != 2)
      fail<ValueError>("match_quality_matrix: expected a 2-d array (G, N), got shape ", shape_str(quality));
    const index_t g = quality.shape[0], n = quality.shape[1];
    const T* q = shaped_arg<const T>(quality, "match_quality_matrix", "(G, N)", std::array<index_t, 2>{g, n});
    std::int64_t* m = vector_arg<std::int64_t>(matches, "matches", n);
    check(m != nullptr, "matches: expected an (N,) int64 array");
    check(low_threshold <= high_threshold, "low_threshold: expected at most high_threshold (", high_threshold,
          "), got ", low_threshold);
    check_finite(q, g * n, "match_quality_matrix");
    cpu::match_boxes<T>(q, g, n, T(high_threshold), T(low_threshold), allow_low_quality_matches, m);
  });
}

}  // namespace fastconv::boxes
