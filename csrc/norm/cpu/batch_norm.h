// The fused batch norm kernels (norm/norm.h) on the CPU: training and eval forward, and a
// backward that goes through the ReLU mask and the residual in the same pass. Their arrays are
// checked by norm/norm.cpp.
#pragma once
#include <algorithm>
#include <cmath>

#include "core/errors.h"
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

// The same three over channels_last memory (N, H, W, C): batch_norm_channels_last.cpp.
template <class T>
void batch_norm_train_forward_channels_last(const BatchNormShape& s, const BatchNormForward<T>& f, double momentum,
                                            double eps, T* running_mean, T* running_var, T* save_mean,
                                            T* save_invstd);
template <class T>
void batch_norm_eval_forward_channels_last(const BatchNormShape& s, const BatchNormForward<T>& f, double eps,
                                           const T* running_mean, const T* running_var);
template <class T>
void batch_norm_backward_channels_last(const BatchNormShape& s, const BatchNormBackward<T>& b);

// The per-channel arithmetic both layouts share, once a channel's sums are formed.

struct Moments {
  double mean, var;  // var is biased (divided by the count)
};

// The shift of a channel's one-pass sums of (x - shift): its first value, so that the shifted
// sum of squares does not cancel catastrophically when |mean| >> std (the textbook one-pass
// formula does). A non-finite first value shifts by 0 instead, so that an infinite value gives
// an infinite mean and a NaN variance, as in PyTorch (inf - inf would make both NaN).
template <class T>
T moment_shift(T first) {
  return std::isfinite(first) ? first : T(0);
}

inline Moments shifted_moments(double shift, double sum, double sum_sq, double count) {
  const double mean_shifted = sum / count, var = sum_sq / count - mean_shifted * mean_shifted;
  return {shift + mean_shifted, var < 0 ? 0.0 : var};  // rounding may make it negative; NaN stays NaN
}

// The training forward's preconditions. PyTorch: "Expected more than 1 value per channel when
// training" (the variance is undefined). An empty batch leaves the running statistics as they
// are, as PyTorch does, and saves zeros (so that the empty backward's sums stay 0): false then.
template <class T>
bool has_batch_statistics(const BatchNormShape& s, T* save_mean, T* save_invstd) {
  check(s.count() != 1, "input: expected more than 1 value per channel when training, got N=", s.N,
        " and H*W=", s.HW);
  if (s.count() != 0) return true;
  std::fill(save_mean, save_mean + s.C, T(0));
  std::fill(save_invstd, save_invstd + s.C, T(0));
  return false;
}

// Saves channel c's batch statistics for the backward and updates the running ones (when not
// null; PyTorch keeps the unbiased variance as the running estimate). Returns invstd.
template <class T>
double record_statistics(const BatchNormShape& s, index_t c, const Moments& mom, double momentum, double eps,
                         T* running_mean, T* running_var, T* save_mean, T* save_invstd) {
  const double m = static_cast<double>(s.count()), invstd = 1.0 / std::sqrt(mom.var + eps);
  save_mean[c] = static_cast<T>(mom.mean);
  save_invstd[c] = static_cast<T>(invstd);
  if (running_mean) running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mom.mean);
  if (running_var) running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * mom.var * m / (m - 1));
  return invstd;
}

// grad_x = k * g + (x - mean) * k_xmu + k_0 for channel c, from the sums of g and of
// g * (x - mean) over the channel (g: grad_y through the ReLU mask); writes grad_beta[c] and
// grad_gamma[c] on the way.
struct GradCoefficients {
  double k, k_xmu, k_0;
};

template <class T>
GradCoefficients channel_grad_coefficients(const BatchNormShape& s, const BatchNormBackward<T>& b, index_t c,
                                           double sum, double sum_xmu) {
  const double invstd = b.invstd[c], gamma = b.gamma ? b.gamma[c] : 1.0, m = static_cast<double>(s.count());
  b.grad_beta[c] = static_cast<T>(sum);
  b.grad_gamma[c] = static_cast<T>(sum_xmu * invstd);
  // Training: the mean and variance depend on x, which adds the two terms of
  // grad_x = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)).
  const double k = gamma * invstd;
  if (!b.training) return {k, 0.0, 0.0};
  return {k, -k * invstd * invstd * sum_xmu / m, -k * sum / m};
}

}  // namespace fastconv::norm::cpu
