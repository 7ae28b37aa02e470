// The per-thread bodies of roi.cu's roi_pool kernels, so that a CPU test runs each over the
// whole grid (tests/cuda/test_roi_host.py). Boxes are rounded and binned by
// common/roi_boxes.h, as the CPU kernel does it (roi/cpu/roi_pool.cpp).
//
// The backward routes each grad_output entry to the input element its argmax names, in one of
// two formulations:
//  - scatter: a thread per grad_output entry adds it through `add` (atomicAdd on the GPU;
//    torchvision's CUDA kernel): the order of the adds changes from run to run.
//  - per plane: a thread per input-gradient plane (n, c) walks channel c's entries in box and
//    bin order and adds those that land in its plane, the CPU kernel's order: no atomics, the
//    same bits every run, and the CPU kernel's bits.
// argmax was checked by the caller: every entry is -1 or an index into its own channel.
#pragma once
#include "common/roi_boxes.h"

namespace fastconv::roi {

// The running maximum starts here for both types, as torchvision's (and the CPU kernel's) does.
constexpr float kLowestFloat = -3.402823466e+38F;  // -FLT_MAX

// Element i of out and argmax (K, C, PH, PW): the maximum of its bin's window, first maximum
// kept, and its flat index into the input; an empty bin gives 0 and -1.
template <class T>
FASTCONV_HD inline void roi_pool_forward_element(const RoiShape& s, double spatial_scale, const T* input,
                                                 const T* boxes, index_t i, T* out, int64_t* argmax) {
  const index_t pw = i % s.PW, ph = i / s.PW % s.PH, c = i / s.bins() % s.C, k = i / (s.bins() * s.C);
  const PixelBox b = pixel_box(boxes, k, spatial_scale);
  const Window rows = bin_window<T>(ph, s.PH, b.start_h, b.height, s.H);
  const Window cols = bin_window<T>(pw, s.PW, b.start_w, b.width, s.W);
  const index_t plane_start = (b.batch * s.C + c) * s.H * s.W;
  const bool empty = rows.hi <= rows.lo || cols.hi <= cols.lo;
  T best = empty ? T(0) : T(kLowestFloat);
  index_t best_index = -1;
  for (index_t h = rows.lo; h < rows.hi; ++h)
    for (index_t w = cols.lo; w < cols.hi; ++w)
      if (input[plane_start + h * s.W + w] > best) {
        best = input[plane_start + h * s.W + w];
        best_index = h * s.W + w;
      }
  out[i] = best;
  argmax[i] = best_index < 0 ? -1 : plane_start + best_index;
}

// Scatter backward, element i of grad_output: add(address, gradient) at its argmax.
template <class T, class Add>
FASTCONV_HD inline void roi_pool_backward_scatter(const T* grad_output, const int64_t* argmax, index_t i,
                                                  T* grad_input, const Add& add) {
  if (argmax[i] != -1) add(grad_input + argmax[i], grad_output[i]);
}

// Per-plane backward, plane `plane_index` (n * C + c) of grad_input: zeroed, then channel c's
// entries of every box added where their argmax lands in it, in box and bin order.
template <class T>
FASTCONV_HD inline void roi_pool_backward_plane(const RoiShape& s, const T* grad_output, const int64_t* argmax,
                                                index_t plane_index, T* grad_input) {
  const index_t plane = s.H * s.W, c = plane_index % s.C, start = plane_index * plane, bins = s.bins();
  T* dst = grad_input + start;
  for (index_t j = 0; j < plane; ++j) dst[j] = T(0);
  for (index_t k = 0; k < s.K; ++k) {
    const index_t entries = (k * s.C + c) * bins;
    for (index_t bin = 0; bin < bins; ++bin) {
      const int64_t at = argmax[entries + bin];
      if (at >= start && at < start + plane) dst[at - start] += grad_output[entries + bin];
    }
  }
}

}  // namespace fastconv::roi
