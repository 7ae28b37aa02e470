// The checked dispatch of roi_align and roi_pool: the sizes from the input-side and output-side
// arrays, every array checked against them and every box's batch index against the input, then
// the kernel of their dtype.
#include "roi/roi.h"

#include <cmath>
#include <cstdint>

#include "roi/cpu/roi_align.h"
#include "roi/cpu/roi_pool.h"

namespace fastconv::roi {

namespace {

// The sizes of a roi kernel call, from its input-side (N, C, H, W) and output-side
// (K, C, PH, PW) arrays; each array's own check then asks for the shared C.
RoiShape roi_shape(const TensorArg& image, const char* image_name, const TensorArg& pooled, const char* pooled_name) {
  const auto in = shape4(image, image_name, "(N, C, H, W)");
  const auto out = shape4(pooled, pooled_name, "(K, C, PH, PW)");
  // roi_align clamps samples onto border pixels, which an empty plane does not have.
  check(in[2] > 0 && in[3] > 0, image_name, ": expected non-empty spatial dimensions, got shape ", shape_str(image));
  return {in[0], in[1], in[2], in[3], out[0], out[2], out[3]};
}

// A (K, 5) boxes array whose batch indices name images of the input: the kernels index memory
// with them.
template <class T>
const T* roi_boxes_arg(const TensorArg& boxes, const RoiShape& s) {
  const T* data = shaped_arg<const T>(boxes, "boxes", "(K, 5)", std::array<index_t, 2>{s.K, 5});
  for (index_t k = 0; k < s.K; ++k) {
    const T b = data[k * 5];
    check(valid_batch_index(b, s.N), "boxes: batch index ", b, " of box ", k, " is not an image of input (batch size ",
          s.N, ")");
  }
  return data;
}

// spatial_scale multiplies every coordinate: a non-finite one makes every box non-finite.
void check_spatial_scale(double spatial_scale) {
  check(std::isfinite(spatial_scale), "spatial_scale: expected a finite number, got ", spatial_scale);
}

// Every box of a roi_align call: finite coordinates after scaling (the kernels convert them to
// pixel indices) and a sample table within kMaxSamplesPerBox (it is built whole).
template <class T>
void check_aligned_boxes(const RoiShape& s, const RoiAlignParams& p, const T* boxes) {
  check_spatial_scale(p.spatial_scale);
  check(p.sampling_ratio <= 0 || double(p.sampling_ratio) <= kMaxSamplesPerBox, "sampling_ratio: expected at most ",
        index_t(kMaxSamplesPerBox), " samples per bin and axis (or <= 0 for adaptive), got ", p.sampling_ratio);
  for (index_t k = 0; k < s.K; ++k) {
    const T* box = boxes + k * 5;
    switch (aligned_box_error(s, p, box)) {
      case AlignedBoxError::non_finite:
        fail<ValueError>("boxes: box ", k, " has a non-finite coordinate or side after scaling (", box[1], ", ", box[2], ", ", box[3], ", ",
                         box[4], ") at spatial_scale ", p.spatial_scale);
      case AlignedBoxError::too_many_samples: {
        const SampleGrid g = aligned_sample_grid(s, p, aligned_extent(p, box));
        fail<ValueError>("boxes: box ", k, " needs ", g.grid_h, " x ", g.grid_w, " samples in each of its ", s.bins(),
                         " bins, more than the ", index_t(kMaxSamplesPerBox),
                         " samples a box may have; pass a smaller sampling_ratio or a larger output_size");
      }
      case AlignedBoxError::none: break;
    }
  }
}

// Every box of a roi_pool call: scaled coordinates that round to 32-bit pixels, as torchvision's.
template <class T>
void check_pixel_boxes(const RoiShape& s, double spatial_scale, const T* boxes) {
  check_spatial_scale(spatial_scale);
  for (index_t k = 0; k < s.K; ++k) {
    if (valid_pixel_box(boxes, k, spatial_scale)) continue;
    const T* box = boxes + k * 5;
    const bool finite = std::isfinite(box[1]) && std::isfinite(box[2]) && std::isfinite(box[3]) && std::isfinite(box[4]);
    fail<ValueError>("boxes: box ", k, " has a ", finite ? "coordinate beyond +-2^31 pixels" : "non-finite coordinate",
                     " (", box[1], ", ", box[2], ", ", box[3], ", ", box[4], ") at spatial_scale ", spatial_scale);
  }
}

}  // namespace

void roi_align_forward(const TensorArg& x, const TensorArg& boxes, const TensorArg& out, const RoiAlignParams& p) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const RoiShape s = roi_shape(x, "input", out, "out");
    const T* bp = roi_boxes_arg<T>(boxes, s);
    check_aligned_boxes(s, p, bp);
    const T* xp = nchw_arg<const T>(x, "input", {s.N, s.C, s.H, s.W});
    T* op = nchw_arg<T>(out, "out", {s.K, s.C, s.PH, s.PW});
    cpu::roi_align_forward<T>(s, p, xp, bp, op);
  });
}

void roi_align_backward(const TensorArg& grad_y, const TensorArg& boxes, const TensorArg& grad_x,
                        const RoiAlignParams& p) {
  dispatch_float(grad_y, "grad_output", [&](auto tag) {
    using T = decltype(tag);
    const RoiShape s = roi_shape(grad_x, "grad_input", grad_y, "grad_output");
    const T* bp = roi_boxes_arg<T>(boxes, s);
    check_aligned_boxes(s, p, bp);
    const T* dyp = nchw_arg<const T>(grad_y, "grad_output", {s.K, s.C, s.PH, s.PW});
    T* dxp = nchw_arg<T>(grad_x, "grad_input", {s.N, s.C, s.H, s.W});
    cpu::roi_align_backward<T>(s, p, dyp, bp, dxp);
  });
}

void roi_pool_forward(const TensorArg& x, const TensorArg& boxes, const TensorArg& out, const TensorArg& argmax,
                      double spatial_scale) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const RoiShape s = roi_shape(x, "input", out, "out");
    const T* bp = roi_boxes_arg<T>(boxes, s);
    check_pixel_boxes(s, spatial_scale, bp);
    const T* xp = nchw_arg<const T>(x, "input", {s.N, s.C, s.H, s.W});
    T* op = nchw_arg<T>(out, "out", {s.K, s.C, s.PH, s.PW});
    std::int64_t* ap = shaped_arg<std::int64_t>(argmax, "argmax", "(K, C, PH, PW)",
                                                std::array<index_t, 4>{s.K, s.C, s.PH, s.PW});
    cpu::roi_pool_forward<T>(s, spatial_scale, xp, bp, op, ap);
  });
}

void roi_pool_backward(const TensorArg& grad_y, const TensorArg& argmax, const TensorArg& grad_x) {
  dispatch_float(grad_y, "grad_output", [&](auto tag) {
    using T = decltype(tag);
    const RoiShape s = roi_shape(grad_x, "grad_input", grad_y, "grad_output");
    const T* dyp = nchw_arg<const T>(grad_y, "grad_output", {s.K, s.C, s.PH, s.PW});
    const std::int64_t* ap = shaped_arg<const std::int64_t>(argmax, "argmax", "(K, C, PH, PW)",
                                                            std::array<index_t, 4>{s.K, s.C, s.PH, s.PW});
    T* dxp = nchw_arg<T>(grad_x, "grad_input", {s.N, s.C, s.H, s.W});
    cpu::roi_pool_backward<T>(s, dyp, ap, dxp);
  });
}

}  // namespace fastconv::roi
