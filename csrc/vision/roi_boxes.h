// Regions of interest shared by roi_pool and roi_align: a (K, 5) array of rows
// [batch_index, x1, y1, x2, y2] in input coordinates (torchvision's roi format).
#pragma once
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/errors.h"
#include "core/view.h"

namespace fastconv::vision {

// The sizes every roi kernel needs: the input (N, C, H, W), K boxes, a (PH, PW) output grid.
struct RoiShape {
  index_t N, C, H, W, K, PH, PW;
  index_t bins() const { return PH * PW; }
};

template <class T>
index_t roi_batch_index(const T* boxes, index_t k) {
  return static_cast<index_t>(boxes[k * 5]);
}

// Each box's batch index must name an image of the input: the kernels index memory with it.
template <class T>
void check_roi_batch_indices(const T* boxes, index_t K, index_t N) {
  for (index_t k = 0; k < K; ++k) {
    const T b = boxes[k * 5];
    check(std::isfinite(b) && b == std::floor(b) && b >= 0 && b < T(N), "boxes: batch index ", b,
          " of box ", k, " is not an image of input (batch size ", N, ")");
  }
}

// Box indices ordered by image, boxes of one image in their given order. Kernels walk boxes in
// this order so that consecutive boxes read the same input planes while they are in cache; the
// gradient of a pixel still adds its boxes' terms in box order (only its image's boxes reach it).
template <class T>
std::vector<index_t> boxes_by_image(const T* boxes, index_t K) {
  std::vector<index_t> order(K);
  std::iota(order.begin(), order.end(), index_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](index_t a, index_t b) { return roi_batch_index(boxes, a) < roi_batch_index(boxes, b); });
  return order;
}

}  // namespace fastconv::vision
