// Fused batch normalisation over NCHW, as torch.nn.functional.batch_norm followed by an
// optional residual add and ReLU: y = relu(bn(x) + z). Each entry point checks every array
// against the input's shape (N, C, H, W) and runs the kernel of its dtype (cpu/batch_norm.h);
// a channels_last input (NHWC memory) is read in place, and its other arrays are channels_last.
#pragma once
#include "core/tensor_arg.h"

namespace fastconv::norm {

struct BatchNormShape {
  index_t N, C, HW;
  index_t count() const { return N * HW; }  // values per channel
};

// Batch statistics: biased variance normalises; running stats (when given) are updated in place
// with the unbiased variance, as PyTorch does. save_mean / save_invstd feed the backward.
// residual, weight and bias may be absent (no residual; weight 1, bias 0), as may the running
// stats.
void batch_norm_train_forward(const TensorArg& input, const TensorArg& residual, const TensorArg& weight,
                              const TensorArg& bias, const TensorArg& running_mean, const TensorArg& running_var,
                              const TensorArg& out, const TensorArg& save_mean, const TensorArg& save_invstd,
                              double momentum, double eps, bool relu);

void batch_norm_eval_forward(const TensorArg& input, const TensorArg& residual, const TensorArg& weight,
                             const TensorArg& bias, const TensorArg& running_mean, const TensorArg& running_var,
                             const TensorArg& out, double eps, bool relu);

// `output` (the forward's, for its ReLU mask) is absent without ReLU, grad_residual without a
// residual; mean and invstd are the saved batch statistics (training) or the running ones.
void batch_norm_backward(const TensorArg& grad_output, const TensorArg& input, const TensorArg& output,
                         const TensorArg& weight, const TensorArg& mean, const TensorArg& invstd, bool training,
                         const TensorArg& grad_input, const TensorArg& grad_residual, const TensorArg& grad_weight,
                         const TensorArg& grad_bias);

}  // namespace fastconv::norm
