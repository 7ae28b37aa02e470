// The checked dispatch of batch norm: every array checked against the input's shape and layout
// before the kernel of its dtype and the input's layout runs.
#include "norm/norm.h"

#include <utility>

#include "norm/cpu/batch_norm.h"

namespace fastconv::norm {

namespace {

BatchNormShape batch_norm_shape(const std::array<index_t, 4>& dims) { return {dims[0], dims[1], dims[2] * dims[3]}; }

// The arrays every forward reads and writes, checked against x's shape.
template <class T>
std::pair<BatchNormShape, cpu::BatchNormForward<T>> batch_norm_views(const TensorArg& x, const TensorArg& residual,
                                                                     const TensorArg& gamma, const TensorArg& beta,
                                                                     const TensorArg& y, bool relu) {
  const auto dims = shape4(x, "input", "(N, C, H, W)");
  const BatchNormShape s = batch_norm_shape(dims);
  const bool nhwc = is_channels_last(x);
  cpu::BatchNormForward<T> f;
  f.x = image_arg<const T>(x, "input", dims, nhwc);
  f.residual = residual.present() ? image_arg<const T>(residual, "residual", dims, nhwc) : nullptr;
  f.gamma = vector_arg<const T>(gamma, "weight", s.C);
  f.beta = vector_arg<const T>(beta, "bias", s.C);
  f.relu = relu;
  f.y = image_arg<T>(y, "out", dims, nhwc);
  return {s, f};
}

}  // namespace

void batch_norm_train_forward(const TensorArg& x, const TensorArg& residual, const TensorArg& gamma,
                              const TensorArg& beta, const TensorArg& running_mean, const TensorArg& running_var,
                              const TensorArg& y, const TensorArg& save_mean, const TensorArg& save_invstd,
                              double momentum, double eps, bool relu) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const auto [s, f] = batch_norm_views<T>(x, residual, gamma, beta, y, relu);
    T* rm = vector_arg<T>(running_mean, "running_mean", s.C);
    T* rv = vector_arg<T>(running_var, "running_var", s.C);
    T* sm = vector_arg<T>(save_mean, "save_mean", s.C);
    T* si = vector_arg<T>(save_invstd, "save_invstd", s.C);
    if (is_channels_last(x)) cpu::batch_norm_train_forward_channels_last<T>(s, f, momentum, eps, rm, rv, sm, si);
    else cpu::batch_norm_train_forward<T>(s, f, momentum, eps, rm, rv, sm, si);
  });
}

void batch_norm_eval_forward(const TensorArg& x, const TensorArg& residual, const TensorArg& gamma,
                             const TensorArg& beta, const TensorArg& running_mean, const TensorArg& running_var,
                             const TensorArg& y, double eps, bool relu) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const auto [s, f] = batch_norm_views<T>(x, residual, gamma, beta, y, relu);
    const T* rm = vector_arg<const T>(running_mean, "running_mean", s.C);
    const T* rv = vector_arg<const T>(running_var, "running_var", s.C);
    if (is_channels_last(x)) cpu::batch_norm_eval_forward_channels_last<T>(s, f, eps, rm, rv);
    else cpu::batch_norm_eval_forward<T>(s, f, eps, rm, rv);
  });
}

void batch_norm_backward(const TensorArg& grad_y, const TensorArg& x, const TensorArg& y, const TensorArg& gamma,
                         const TensorArg& mean, const TensorArg& invstd, bool training, const TensorArg& grad_x,
                         const TensorArg& grad_residual, const TensorArg& grad_gamma, const TensorArg& grad_beta) {
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const auto dims = shape4(x, "input", "(N, C, H, W)");
    const BatchNormShape s = batch_norm_shape(dims);
    const bool nhwc = is_channels_last(x);
    cpu::BatchNormBackward<T> b;
    b.grad_y = image_arg<const T>(grad_y, "grad_output", dims, nhwc);
    b.x = image_arg<const T>(x, "input", dims, nhwc);
    b.y = y.present() ? image_arg<const T>(y, "output", dims, nhwc) : nullptr;
    b.gamma = vector_arg<const T>(gamma, "weight", s.C);
    b.mean = vector_arg<const T>(mean, "mean", s.C);
    b.invstd = vector_arg<const T>(invstd, "invstd", s.C);
    b.training = training;
    b.grad_x = image_arg<T>(grad_x, "grad_input", dims, nhwc);
    b.grad_residual = grad_residual.present() ? image_arg<T>(grad_residual, "grad_residual", dims, nhwc) : nullptr;
    b.grad_gamma = vector_arg<T>(grad_gamma, "grad_weight", s.C);
    b.grad_beta = vector_arg<T>(grad_beta, "grad_bias", s.C);
    if (nhwc) cpu::batch_norm_backward_channels_last<T>(s, b);
    else cpu::batch_norm_backward<T>(s, b);
  });
}

}  // namespace fastconv::norm
