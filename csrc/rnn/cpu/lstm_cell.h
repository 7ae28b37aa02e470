// The LSTM cell kernels (rnn/rnn.h) on the CPU; their arrays are checked by rnn/rnn.cpp and are
// C-contiguous.
#pragma once
#include "rnn/rnn.h"

namespace fastconv::rnn::cpu {

template <class T>
struct LstmCellForward {
  const T *x = nullptr, *h = nullptr, *c = nullptr;
  const T *w_ih = nullptr, *w_hh = nullptr;
  const T *b_ih = nullptr, *b_hh = nullptr;  // null: no bias
  T *h_out = nullptr, *c_out = nullptr;
  T* gates = nullptr;  // (N, 4H): first the GEMM's pre-activations, then i, f, g, o activated
};

template <class T>
void lstm_cell_forward(const LstmShape& s, const LstmCellForward<T>& f);

template <class T>
struct LstmCellBackward {
  const T *grad_h = nullptr, *grad_c = nullptr;
  const T* gates = nullptr;  // the forward's activated gates
  const T *c = nullptr, *c_out = nullptr;
  T *grad_gates = nullptr, *grad_c_prev = nullptr;
};

template <class T>
void lstm_cell_backward(const LstmShape& s, const LstmCellBackward<T>& b);

}  // namespace fastconv::rnn::cpu
