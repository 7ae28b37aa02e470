// The box kernels (boxes/boxes.h) on the CPU. Their arrays are checked by boxes/boxes.cpp.
#pragma once
#include <cstdint>

namespace fastconv::boxes::cpu {

template <class T>
void box_iou(const T* boxes1, std::int64_t n, const T* boxes2, std::int64_t m, T* out);

// idxs may be nullptr (one class).
template <class T>
std::int64_t nms(const T* boxes, const T* scores, const std::int64_t* idxs, std::int64_t n, T iou_threshold,
                 std::int64_t* keep);

template <class T>
void encode_boxes(const T* reference, const T* proposals, std::int64_t n, const double weights[4], T* out);

template <class T>
void decode_boxes(const T* deltas, const T* boxes, std::int64_t n, std::int64_t k, const double weights[4],
                  double clip, T* out);

template <class T>
void grid_anchors(const T* sizes, std::int64_t num_sizes, const T* ratios, std::int64_t num_ratios, std::int64_t H,
                  std::int64_t W, double stride_y, double stride_x, T* out);

template <class T>
void match_boxes(const T* quality, std::int64_t g, std::int64_t n, T high, T low, bool allow_low_quality,
                 std::int64_t* matches);

}  // namespace fastconv::boxes::cpu
