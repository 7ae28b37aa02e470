// The fused batch norm kernels (norm/norm.h) on the CPU: training and eval forward, and a
// backward that goes through the ReLU mask and the residual in the same pass. Their arrays are
// checked by norm/norm.cpp.
#pragma once
#include "core/view.h"
#include "norm/norm.h"

namespace fastconv::norm::cpu {

template <class T>
struct BatchNormForward {
  const T* x = nullptr;
  const T* residual = nullptr;  // z of relu(bn(x) + z), or null
  const T* gamma = nullptr;     // null: 1 (affine=False)
  const T* beta = nullptr;      // null: 0
  bool relu = false;
  T* y = nullptr;
};

// Batch statistics: biased variance normalises; running stats (when not null) are updated in
// place with the unbiased variance, as PyTorch does. save_mean / save_invstd feed the backward.
template <class T>
void batch_norm_train_forward(const BatchNormShape& s, const BatchNormForward<T>& f, double momentum,
                              double eps, T* running_mean, T* running_var, T* save_mean, T* save_invstd);

template <class T>
void batch_norm_eval_forward(const BatchNormShape& s, const BatchNormForward<T>& f, double eps,
                             const T* running_mean, const T* running_var);

template <class T>
struct BatchNormBackward {
  const T* grad_y = nullptr;
  const T* x = nullptr;
  const T* y = nullptr;       // the forward's output: its ReLU mask; null without ReLU
  const T* gamma = nullptr;   // null: 1
  const T* mean = nullptr;    // saved batch mean (training) or running mean (eval)
  const T* invstd = nullptr;  // 1 / sqrt(var + eps) of the same statistics
  bool training = true;       // training: the statistics depend on x too
  T* grad_x = nullptr;
  T* grad_residual = nullptr;  // null when there was no residual
  T* grad_gamma = nullptr;
  T* grad_beta = nullptr;
};

template <class T>
void batch_norm_backward(const BatchNormShape& s, const BatchNormBackward<T>& b);

}  // namespace fastconv::norm::cpu
