// The bodies of batch_norm_loops.h's loops, included by one file per ISA. Each includer names
// its own Isa tag in an anonymous namespace, so its instantiations are its own (internal
// linkage): the linker cannot swap an AVX-512 copy in for another ISA's callers. Raw loops only:
// nothing here may instantiate an inline function that baseline code shares.
#pragma once
#include "norm/cpu/batch_norm_loops.h"

namespace fastconv::norm::cpu::loop_bodies {

template <class Isa, class T>
void moments(const T* __restrict x, index_t n, T shift, T* sum, T* sum_sq) {
  T run = 0, run_sq = 0;
#pragma omp simd reduction(+ : run, run_sq)
  for (index_t i = 0; i < n; ++i) {
    const T d = x[i] - shift;
    run += d;
    run_sq += d * d;
  }
  *sum = run;
  *sum_sq = run_sq;
}

template <class Isa, bool kRelu, class T>
inline T relu_if(T v) {
  if constexpr (kRelu) return v < T(0) ? T(0) : v;  // NaN passes, as torch.relu's does
  return v;
}

template <class Isa, class T, bool kRelu, bool kResidual>
void normalize(const T* __restrict x, const T* __restrict z, index_t n, T mean, T scale, T beta, T* __restrict y) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    T v = (x[i] - mean) * scale + beta;
    if constexpr (kResidual) v += z[i];
    y[i] = relu_if<Isa, kRelu>(v);
  }
}

// PyTorch's threshold_backward: the gradient passes where the output is > 0. Both loads come
// before the select: a load under the condition made GCC branch on a random mask.
template <class Isa, bool kRelu, class T>
inline T masked(T dy, T y) {
  if constexpr (kRelu) return y <= T(0) ? T(0) : dy;
  return dy;
}

template <class Isa, class T, bool kRelu>
void grad_sums(const T* __restrict dy, const T* __restrict y, const T* __restrict x, index_t n, T mean,
               T* __restrict g_out, T* sum, T* sum_xmu) {
  T run = 0, run_xmu = 0;
#pragma omp simd reduction(+ : run, run_xmu)
  for (index_t i = 0; i < n; ++i) {
    const T g = masked<Isa, kRelu>(dy[i], kRelu ? y[i] : T(0));
    if constexpr (kRelu) g_out[i] = g;
    run += g;
    run_xmu += g * (x[i] - mean);
  }
  *sum = run;
  *sum_xmu = run_xmu;
}

template <class Isa, class T, bool kResidual>
void grad_input(const T* __restrict g, const T* __restrict x, index_t n, T mean, T k, T k_xmu, T k_0,
                T* __restrict dx, T* __restrict dz) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    if constexpr (kResidual) dz[i] = g[i];
    dx[i] = k * g[i] + (x[i] - mean) * k_xmu + k_0;
  }
}

template <class Isa, class T>
void moments_cl(const T* __restrict x, index_t pixels, index_t C, const T* __restrict shift, T* __restrict sum,
                T* __restrict sum_sq) {
  for (index_t p = 0; p < pixels; ++p, x += C) {
#pragma omp simd
    for (index_t c = 0; c < C; ++c) {
      const T d = x[c] - shift[c];
      sum[c] += d;
      sum_sq[c] += d * d;
    }
  }
}

template <class Isa, class T, bool kRelu, bool kResidual>
void normalize_cl(const T* __restrict x, const T* __restrict z, index_t pixels, index_t C, const T* __restrict mean,
                  const T* __restrict scale, const T* __restrict beta, T* __restrict y) {
  for (index_t p = 0; p < pixels; ++p, x += C, y += C, z += kResidual ? C : 0) {
#pragma omp simd
    for (index_t c = 0; c < C; ++c) {
      T v = (x[c] - mean[c]) * scale[c] + beta[c];
      if constexpr (kResidual) v += z[c];
      y[c] = relu_if<Isa, kRelu>(v);
    }
  }
}

template <class Isa, class T, bool kRelu, bool kWrite>
void grad_sums_cl(const T* __restrict dy, const T* __restrict y, const T* __restrict x, index_t pixels, index_t C,
                  const T* __restrict mean, T* __restrict g_out, T* __restrict sum, T* __restrict sum_xmu) {
  for (index_t p = 0; p < pixels; ++p, dy += C, x += C, y += kRelu ? C : 0, g_out += kWrite ? C : 0) {
#pragma omp simd
    for (index_t c = 0; c < C; ++c) {
      const T g = masked<Isa, kRelu>(dy[c], kRelu ? y[c] : T(0));
      if constexpr (kWrite) g_out[c] = g;
      sum[c] += g;
      sum_xmu[c] += g * (x[c] - mean[c]);
    }
  }
}

template <class Isa, class T, bool kRelu, bool kResidual>
void grad_input_cl(const T* __restrict dy, const T* __restrict y, const T* __restrict x, index_t pixels, index_t C,
                   const T* __restrict mean, const T* __restrict k, const T* __restrict k_xmu,
                   const T* __restrict k_0, T* __restrict dx, T* __restrict dz) {
  for (index_t p = 0; p < pixels; ++p, dy += C, x += C, dx += C, y += kRelu ? C : 0, dz += kResidual ? C : 0) {
#pragma omp simd
    for (index_t c = 0; c < C; ++c) {
      const T g = masked<Isa, kRelu>(dy[c], kRelu ? y[c] : T(0));
      if constexpr (kResidual) dz[c] = g;
      dx[c] = k[c] * g + (x[c] - mean[c]) * k_xmu[c] + k_0[c];
    }
  }
}

// The table of one ISA's loops (Isa: the including file's tag).
template <class Isa, class T>
BatchNormLoops<T> table() {
  BatchNormLoops<T> l{};
  l.moments = moments<Isa, T>;
  l.normalize[0][0] = normalize<Isa, T, false, false>;
  l.normalize[0][1] = normalize<Isa, T, false, true>;
  l.normalize[1][0] = normalize<Isa, T, true, false>;
  l.normalize[1][1] = normalize<Isa, T, true, true>;
  l.grad_sums[0] = grad_sums<Isa, T, false>;
  l.grad_sums[1] = grad_sums<Isa, T, true>;
  l.grad_input[0] = grad_input<Isa, T, false>;
  l.grad_input[1] = grad_input<Isa, T, true>;
  l.moments_cl = moments_cl<Isa, T>;
  l.normalize_cl[0][0] = normalize_cl<Isa, T, false, false>;
  l.normalize_cl[0][1] = normalize_cl<Isa, T, false, true>;
  l.normalize_cl[1][0] = normalize_cl<Isa, T, true, false>;
  l.normalize_cl[1][1] = normalize_cl<Isa, T, true, true>;
  l.grad_sums_cl[0][0] = grad_sums_cl<Isa, T, false, false>;
  l.grad_sums_cl[0][1] = grad_sums_cl<Isa, T, false, true>;
  l.grad_sums_cl[1][0] = grad_sums_cl<Isa, T, true, false>;
  l.grad_sums_cl[1][1] = grad_sums_cl<Isa, T, true, true>;
  l.grad_input_cl[0][0] = grad_input_cl<Isa, T, false, false>;
  l.grad_input_cl[0][1] = grad_input_cl<Isa, T, false, true>;
  l.grad_input_cl[1][0] = grad_input_cl<Isa, T, true, false>;
  l.grad_input_cl[1][1] = grad_input_cl<Isa, T, true, true>;
  return l;
}

}  // namespace fastconv::norm::cpu::loop_bodies
