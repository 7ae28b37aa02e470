// Every host-device function of csrc/common, instantiated in a kernel for float and double: the
// proof that the shared geometry and sampling math compile as CUDA (test_common_headers.py).
#include "common/bilinear.h"
#include "common/c_headers.h"
#include "common/conv_geometry.h"
#include "common/grid_stride.h"
#include "common/host_device.h"
#include "common/index.h"
#include "common/index_div.h"
#include "common/pool_geometry.h"
#include "common/resample_filters.h"
#include "common/roi_boxes.h"
#include "common/winograd_codelets.h"

namespace fc = fastconv;

// Every codelet of one Winograd tiling over two lanes of 6-value columns; value `lane` of the result.
template <class Codelets, class T>
__device__ T run_codelets(const T* tile, int lane) {
  T transformed[12];
  Codelets::input(tile, 2, transformed, 2, 2);
  Codelets::filter(tile, 2, transformed, 2, 2);
  Codelets::output(tile, 2, transformed, 2, 2);
  Codelets::output_adjoint(tile, 2, transformed, 2, 2);
  Codelets::filter_adjoint(tile, 2, transformed, 2, 2);
  return transformed[lane];
}

template <class T>
__global__ void exercise_common(const T* in, T* out, fc::index_t* idx) {
  // index.h
  idx[0] = fc::index_min(idx[1], idx[2]) + fc::index_max(idx[1], idx[2]) + fc::index_clamp(idx[3], 0, 5);

  // index_div.h
  idx[12] = fc::index_div(idx[1], idx[2]) + fc::index_mod(idx[1], idx[2]);

  // conv_geometry.h
  const fc::conv::ConvAxis axis{idx[1], 3, 2, 1, 1, 1};
  idx[4] = fc::conv::dilated_kernel(axis) + fc::conv::padded_input(axis) + fc::conv::phase_kernel_size(11, 4);
  if (fc::conv::conv_axis_error(axis) == fc::conv::ConvAxisError::none) idx[5] = fc::conv::conv_output_size(axis);
  const fc::conv::ConvTransposeAxis transposed{idx[1], 3, 2, 1, 1, 1};
  if (fc::conv::conv_transpose_axis_error(transposed) == fc::conv::ConvTransposeAxisError::none)
    idx[6] = fc::conv::conv_transpose_output_size(transposed) + fc::conv::equivalent_pad_end(transposed);
  const fc::conv::Range columns = fc::conv::valid_range(-1, 2, idx[1], idx[2]);
  idx[7] = columns.hi - columns.lo;

  // pool_geometry.h
  const fc::pool::PoolAxis window{idx[1], 3, 2, 1, 1};
  if (fc::pool::pool_axis_error(window, true) == fc::pool::PoolAxisError::none)
    idx[8] = fc::pool::pool_output_size(window, true);
  const fc::pool::AvgExtent extent = fc::pool::avg_extent(idx[2], 2, 1, 3, idx[1]);
  idx[9] = fc::pool::floor_div(-idx[1], 2) + fc::pool::first_tap(-3, 2) + extent.end - extent.start +
           extent.padded_size + fc::pool::adaptive_start(idx[2], idx[1], 3) + fc::pool::adaptive_end(idx[2], idx[1], 3);

  // roi_boxes.h
  const fc::roi::RoiShape shape{1, 2, 8, 8, 1, 2, 2};
  const fc::roi::RoiAlignParams params{0.5, 0, true};
  const fc::roi::AlignedBox<T> box = fc::roi::aligned_box(shape, params, in, 0);
  const fc::roi::PixelBox pixels = fc::roi::pixel_box(in, 0, 0.5);
  const fc::roi::Window bin = fc::roi::bin_window<T>(1, shape.PH, pixels.start_h, pixels.height, shape.H);
  idx[10] = shape.bins() + fc::roi::samples_per_bin(box) + fc::roi::roi_batch_index(in, 0) + bin.hi - bin.lo +
            fc::roi::valid_batch_index(in[0], shape.N);
  out[0] = box.bin_h + box.bin_w;

  // bilinear.h
  fc::bilinear::Sample<T> sample;
  fc::bilinear::zero_sample(&sample);
  fc::bilinear::roi_align_sample(in[1], in[2], 8, 8, &sample);
  out[1] = sample.weight[0] + sample.weight[3];
  const fc::bilinear::Padding paddings[3] = {fc::bilinear::Padding::zeros, fc::bilinear::Padding::border,
                                             fc::bilinear::Padding::reflection};
  for (int p = 0; p < 3; ++p) {
    const fc::bilinear::Coordinate<T> c = fc::bilinear::source_coordinate(in[3], 8, paddings[p], p == 1);
    out[2 + p] = c.value + c.grad;
  }
  out[5] = fc::bilinear::unnormalize(in[1], 8, false).value + fc::bilinear::clip_coordinate(in[2], 8).grad +
           fc::bilinear::reflect_coordinate(in[3], -1, 15).value + T(fc::bilinear::axis_index(in[4], 8));
  fc::bilinear::GridSample<T> grid;
  fc::bilinear::grid_bilinear_sample(in[1], in[2], 8, 8, &grid);
  T dx[4], dy[4];
  fc::bilinear::grid_bilinear_weight_grads(grid.tx, grid.ty, dx, dy);
  fc::bilinear::grid_nearest_sample(in[1], in[2], 8, 8, &sample);
  out[6] = dx[0] + dy[3] + sample.weight[0];
  const T scale = fc::bilinear::area_scale<T>(8, 16, false, 2.0);
  const fc::bilinear::LinearTap<T> tap = fc::bilinear::linear_tap(scale, idx[2], 8, false);
  out[7] = fc::bilinear::area_source_index(scale, idx[2], true) + tap.w0 + tap.w1;
  idx[11] = tap.i0 + tap.step + fc::bilinear::nearest_source_index(idx[2], 8, 16, 0.0) +
            fc::bilinear::nearest_exact_source_index(idx[2], 8, 16, 0.0);

  // resample_filters.h
  const fc::resample::ResizeAxis down{idx[1], 3, 0.0, false};
  const fc::resample::Filter filters[3] = {fc::resample::Filter::cubic, fc::resample::Filter::antialiased_linear,
                                           fc::resample::Filter::antialiased_cubic};
  for (int f = 0; f < 3; ++f) {
    const fc::resample::Window<T> window = fc::resample::window<T>(down, filters[f], idx[2]);
    out[8 + f] = window.weight(0) + T(window.index(window.count - 1) + window.lowest() + window.highest());
    idx[13 + f] = fc::resample::first_window_reaching<T>(down, filters[f], idx[3]) +
                  fc::resample::widest_window<T>(down, filters[f]);
  }
  out[11] = fc::resample::cubic_near(in[1], T(-0.75)) + fc::resample::cubic_far(in[2], T(-0.5)) +
            fc::resample::antialias_filter(fc::resample::Filter::antialiased_linear, in[3]) +
            fc::resample::antialias_support(fc::resample::Filter::antialiased_cubic, in[4]);

  // winograd_codelets.h: every codelet of each tiling, two lanes of 6-value columns.
  T tile[12];
  for (int i = 0; i < 12; ++i) tile[i] = in[i];
  out[12] = run_codelets<fc::winograd::F2x3>(tile, 0);
  out[13] = run_codelets<fc::winograd::F4x3>(tile, 1);
}

template __global__ void exercise_common<float>(const float*, float*, fc::index_t*);
template __global__ void exercise_common<double>(const double*, double*, fc::index_t*);
