// The box kernels on the CPU, operation for operation as torchvision's (ops/boxes.py,
// models/detection/_utils.py, anchor_utils.py), so that results agree to the last bit where
// torchvision's own arithmetic is deterministic.
#include "boxes/cpu/box_ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/parallel.h"

namespace fastconv::boxes::cpu {

namespace {

template <class T>
T box_area(const T* b) {
  return (b[2] - b[0]) * (b[3] - b[1]);
}

// Intersection over union of two boxes whose areas are known; an empty union gives 0.
template <class T>
T iou(const T* a, T area_a, const T* b, T area_b) {
  const T w = std::max(std::min(a[2], b[2]) - std::max(a[0], b[0]), T(0));
  const T h = std::max(std::min(a[3], b[3]) - std::max(a[1], b[1]), T(0));
  const T inter = w * h;
  const T uni = area_a + area_b - inter;
  return uni > T(0) ? inter / uni : T(0);
}

}  // namespace

template <class T>
void box_iou(const T* boxes1, std::int64_t n, const T* boxes2, std::int64_t m, T* out) {
  std::vector<T> areas2(m);
  for (std::int64_t j = 0; j < m; ++j) areas2[j] = box_area(boxes2 + 4 * j);
  parallel_for(0, n, std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(m, 1)), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const T* a = boxes1 + 4 * i;
      const T area_a = box_area(a);
      for (std::int64_t j = 0; j < m; ++j) out[i * m + j] = iou(a, area_a, boxes2 + 4 * j, areas2[j]);
    }
  });
}

// Greedy NMS (Felzenszwalb et al. 2010 as used by Girshick 2015): visit boxes by decreasing
// score; keep one unless a kept box of its class overlaps it by more than iou_threshold.
template <class T>
std::int64_t nms(const T* boxes, const T* scores, const std::int64_t* idxs, std::int64_t n, T iou_threshold,
                 std::int64_t* keep) {
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return scores[a] > scores[b]; });
  std::vector<T> areas(n);
  for (std::int64_t i = 0; i < n; ++i) areas[i] = box_area(boxes + 4 * i);
  std::vector<char> suppressed(n, 0);
  std::int64_t kept = 0;
  for (std::int64_t oi = 0; oi < n; ++oi) {
    const std::int64_t i = order[oi];
    if (suppressed[i]) continue;
    keep[kept++] = i;
    for (std::int64_t oj = oi + 1; oj < n; ++oj) {
      const std::int64_t j = order[oj];
      if (suppressed[j] || (idxs && idxs[j] != idxs[i])) continue;
      if (iou(boxes + 4 * i, areas[i], boxes + 4 * j, areas[j]) > iou_threshold) suppressed[j] = 1;
    }
  }
  return kept;
}

template <class T>
void encode_boxes(const T* reference, const T* proposals, std::int64_t n, const double weights[4], T* out) {
  const T wx = T(weights[0]), wy = T(weights[1]), ww = T(weights[2]), wh = T(weights[3]);
  for (std::int64_t i = 0; i < n; ++i) {
    const T* p = proposals + 4 * i;
    const T* g = reference + 4 * i;
    const T ex_w = p[2] - p[0], ex_h = p[3] - p[1];
    const T ex_x = p[0] + T(0.5) * ex_w, ex_y = p[1] + T(0.5) * ex_h;
    const T gt_w = g[2] - g[0], gt_h = g[3] - g[1];
    const T gt_x = g[0] + T(0.5) * gt_w, gt_y = g[1] + T(0.5) * gt_h;
    T* o = out + 4 * i;
    o[0] = wx * (gt_x - ex_x) / ex_w;
    o[1] = wy * (gt_y - ex_y) / ex_h;
    o[2] = ww * std::log(gt_w / ex_w);
    o[3] = wh * std::log(gt_h / ex_h);
  }
}

template <class T>
void decode_boxes(const T* deltas, const T* boxes, std::int64_t n, std::int64_t k, const double weights[4],
                  double clip, T* out) {
  const T wx = T(weights[0]), wy = T(weights[1]), ww = T(weights[2]), wh = T(weights[3]), max_d = T(clip);
  for (std::int64_t i = 0; i < n; ++i) {
    const T* b = boxes + 4 * i;
    const T w = b[2] - b[0], h = b[3] - b[1];
    const T cx = b[0] + T(0.5) * w, cy = b[1] + T(0.5) * h;
    for (std::int64_t c = 0; c < k; ++c) {
      const T* d = deltas + (i * k + c) * 4;
      const T px = d[0] / wx * w + cx, py = d[1] / wy * h + cy;
      const T half_w = T(0.5) * (std::exp(std::min(d[2] / ww, max_d)) * w);
      const T half_h = T(0.5) * (std::exp(std::min(d[3] / wh, max_d)) * h);
      T* o = out + (i * k + c) * 4;
      o[0] = px - half_w;
      o[1] = py - half_h;
      o[2] = px + half_w;
      o[3] = py + half_h;
    }
  }
}

template <class T>
void grid_anchors(const T* sizes, std::int64_t num_sizes, const T* ratios, std::int64_t num_ratios, std::int64_t H,
                  std::int64_t W, double stride_y, double stride_x, T* out) {
  const std::int64_t A = num_sizes * num_ratios;
  std::vector<T> base(4 * A);
  for (std::int64_t r = 0; r < num_ratios; ++r) {
    const T h_ratio = std::sqrt(ratios[r]), w_ratio = T(1) / h_ratio;
    for (std::int64_t s = 0; s < num_sizes; ++s) {
      const T ws = w_ratio * sizes[s], hs = h_ratio * sizes[s];
      T* b = base.data() + 4 * (r * num_sizes + s);
      // torch.round rounds half to even, as nearbyint does in the default rounding mode.
      b[0] = std::nearbyint(-ws / T(2));
      b[1] = std::nearbyint(-hs / T(2));
      b[2] = std::nearbyint(ws / T(2));
      b[3] = std::nearbyint(hs / T(2));
    }
  }
  for (std::int64_t y = 0; y < H; ++y) {
    for (std::int64_t x = 0; x < W; ++x) {
      const T sx = T(double(x) * stride_x), sy = T(double(y) * stride_y);
      T* o = out + (y * W + x) * A * 4;
      for (std::int64_t a = 0; a < A; ++a) {
        o[4 * a + 0] = sx + base[4 * a + 0];
        o[4 * a + 1] = sy + base[4 * a + 1];
        o[4 * a + 2] = sx + base[4 * a + 2];
        o[4 * a + 3] = sy + base[4 * a + 3];
      }
    }
  }
}

template <class T>
void match_boxes(const T* quality, std::int64_t g, std::int64_t n, T high, T low, bool allow_low_quality,
                 std::int64_t* matches) {
  std::vector<T> best(n, T(0));
  for (std::int64_t j = 0; j < n; ++j) {
    std::int64_t arg = g > 0 ? 0 : -1;
    for (std::int64_t i = 1; i < g; ++i)
      if (quality[i * n + j] > quality[arg * n + j]) arg = i;
    matches[j] = arg;
    if (arg >= 0) best[j] = quality[arg * n + j];
  }
  // Rows of predictions that some ground truth rates highest keep their match whatever its
  // quality (Ren et al. 2015, section 3.1.2: "the anchor with the highest IoU").
  std::vector<char> rescued(n, 0);
  if (allow_low_quality && n > 0) {
    for (std::int64_t i = 0; i < g; ++i) {
      const T* row = quality + i * n;
      const T top = *std::max_element(row, row + n);
      for (std::int64_t j = 0; j < n; ++j)
        if (row[j] == top) rescued[j] = 1;
    }
  }
  for (std::int64_t j = 0; j < n; ++j) {
    if (matches[j] < 0 || rescued[j]) continue;
    if (best[j] < low) matches[j] = -1;
    else if (best[j] < high) matches[j] = -2;
  }
}

#define FASTCONV_BOX_OPS(T)                                                                                       \
  template void box_iou<T>(const T*, std::int64_t, const T*, std::int64_t, T*);                                   \
  template std::int64_t nms<T>(const T*, const T*, const std::int64_t*, std::int64_t, T, std::int64_t*);         \
  template void encode_boxes<T>(const T*, const T*, std::int64_t, const double[4], T*);                           \
  template void decode_boxes<T>(const T*, const T*, std::int64_t, std::int64_t, const double[4], double, T*);     \
  template void grid_anchors<T>(const T*, std::int64_t, const T*, std::int64_t, std::int64_t, std::int64_t, double, \
                                double, T*);                                                                      \
  template void match_boxes<T>(const T*, std::int64_t, std::int64_t, T, T, bool, std::int64_t*);
FASTCONV_BOX_OPS(float)
FASTCONV_BOX_OPS(double)
#undef FASTCONV_BOX_OPS

}  // namespace fastconv::boxes::cpu
