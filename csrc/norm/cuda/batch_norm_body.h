// The per-element parts of the CUDA batch norm (norm.cu), with the CPU kernel's arithmetic
// (norm/cpu/batch_norm.cpp): the same per-channel coefficients, rounded to T at the same
// places, so that given the same channel statistics a host run of these bodies over the whole
// grid gives the CPU's outputs bit for bit (tests/cuda/test_norm_body.py). The block sums of the
// channel reductions (shared memory) live in norm.cu; how a channel is split into ranges, how the
// ranges' partial sums are added, and the finishing steps are here.
#pragma once
#include "common/c_headers.h"
#include "common/host_device.h"
#include "common/index.h"
#include "common/index_div.h"

namespace fastconv::norm {

// Value j of channel c (0 <= j < N*HW) sits at NCHW offset (n * C + c) * HW + hw.
FASTCONV_HD inline index_t channel_offset(index_t c, index_t j, index_t C, index_t HW) {
  return (index_div(j, HW) * C + c) * HW + index_mod(j, HW);
}

// Two sums of one channel's values: of x - shift and of its square (shift = the channel's first
// value, so the variance does not cancel catastrophically when |mean| >> std), or, backward, of
// g and of g * (x - mean).
struct SumPair {
  double first, second;
};

// A channel's values are summed in `splits` ranges, one block each (norm.cu): range s of
// [0, count), equal ranges but the last.
struct SplitRange {
  index_t begin, end;
};

FASTCONV_HD inline SplitRange split_range(index_t s, index_t splits, index_t count) {
  const index_t chunk = (count + splits - 1) / splits;
  return {index_min(s * chunk, count), index_min((s + 1) * chunk, count)};
}

// Channel c's total from its ranges' partial pairs (partials[2 * (c * splits + s)], ...), added in
// range order: the same order every run.
FASTCONV_HD inline SumPair sum_partials(const double* partials, index_t c, index_t splits) {
  SumPair total{0.0, 0.0};
  for (index_t s = 0; s < splits; ++s) {
    total.first += partials[2 * (c * splits + s)];
    total.second += partials[2 * (c * splits + s) + 1];
  }
  return total;
}

// The batch statistics of channel c from its sums over `count` values: save_mean, save_invstd,
// the running statistics (when given; the variance unbiased, as PyTorch keeps it) and the
// double-precision mean and invstd that the normalisation uses.
template <class T>
FASTCONV_HD void finish_batch_stats(index_t c, SumPair s, double shift, index_t count, double momentum,
                                    double eps, T* running_mean, T* running_var, T* save_mean, T* save_invstd,
                                    double* mean_out, double* invstd_out) {
  const double m = static_cast<double>(count), mean_shifted = s.first / m;
  const double var_raw = s.second / m - mean_shifted * mean_shifted;
  const double var = var_raw > 0.0 ? var_raw : 0.0, mean = shift + mean_shifted;
  const double invstd = 1.0 / sqrt(var + eps);
  save_mean[c] = static_cast<T>(mean);
  save_invstd[c] = static_cast<T>(invstd);
  if (running_mean) running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mean);
  if (running_var) running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * var * m / (m - 1));
  mean_out[c] = mean;
  invstd_out[c] = invstd;
}

// Evaluation: the running statistics as the normalisation's mean and invstd.
template <class T>
FASTCONV_HD void eval_stats_body(index_t c, const T* running_mean, const T* running_var, double eps, double* mean,
                                 double* invstd) {
  mean[c] = static_cast<double>(running_mean[c]);
  invstd[c] = 1.0 / sqrt(static_cast<double>(running_var[c]) + eps);
}

// y = relu?((x - mean) * scale + beta + z?) at NCHW offset i, with the CPU's per-channel T
// coefficients. NaN passes the ReLU, as torch.relu's does.
template <class T>
FASTCONV_HD void batch_norm_apply_body(index_t i, index_t C, index_t HW, const T* x, const T* residual,
                                       const T* gamma, const T* beta, const double* mean, const double* invstd,
                                       bool relu, T* y) {
  const index_t c = index_mod(index_div(i, HW), C);
  const T scale = static_cast<T>(invstd[c] * (gamma ? gamma[c] : T(1)));
  const T shift = beta ? beta[c] : T(0), m = static_cast<T>(mean[c]);
  T v = (x[i] - m) * scale + shift;
  if (residual) v += residual[i];
  if (relu) v = v < T(0) ? T(0) : v;
  y[i] = v;
}

// The gradient reaching bn(x): grad_y where the ReLU passed it (PyTorch's threshold_backward
// zeroes it where the output is <= 0), or grad_y without a ReLU.
template <class T>
FASTCONV_HD T masked_grad(index_t i, const T* grad_y, const T* y) {
  return y && y[i] <= T(0) ? T(0) : grad_y[i];
}

// One channel's backward coefficients, from the sums of g and of g * (x - mean):
// grad_x = k * g + (x - mean) * k_xmu + k_0, training adding the terms of the batch statistics
// (grad_x = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat))).
struct GradCoefficients {
  double k, k_xmu, k_0;
};

template <class T>
FASTCONV_HD GradCoefficients finish_grad_sums(index_t c, double sum, double sum_xmu, index_t count, const T* gamma,
                                              const T* invstd_saved, bool training, T* grad_gamma, T* grad_beta) {
  const double invstd = invstd_saved[c], g = gamma ? gamma[c] : 1.0, m = static_cast<double>(count);
  grad_beta[c] = static_cast<T>(sum);
  grad_gamma[c] = static_cast<T>(sum_xmu * invstd);
  const double k = g * invstd;
  return {k, training ? -k * invstd * invstd * sum_xmu / m : 0.0, training ? -k * sum / m : 0.0};
}

template <class T>
FASTCONV_HD void batch_norm_grad_input_body(index_t i, index_t C, index_t HW, const T* grad_y, const T* x,
                                            const T* y, const T* mean, const double* coefficients, T* grad_x,
                                            T* grad_residual) {
  const index_t c = index_mod(index_div(i, HW), C);
  const T k = static_cast<T>(coefficients[3 * c]), k_xmu = static_cast<T>(coefficients[3 * c + 1]);
  const T k_0 = static_cast<T>(coefficients[3 * c + 2]), m = mean[c];
  const T g = masked_grad(i, grad_y, y);
  if (grad_residual) grad_residual[i] = g;
  grad_x[i] = k * g + (x[i] - m) * k_xmu + k_0;
}

}  // namespace fastconv::norm
