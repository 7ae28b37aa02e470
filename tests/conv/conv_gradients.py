"""The gradient check every conv2d algorithm's tests share: conv2d_backward against central
differences of the float64 reference convolution (tests/reference.py)."""
import numpy as np

from fastconv import ops
from fastconv.backend import to_device, to_host
from fastconv.ops.conv import conv2d_arguments
from tests.reference import conv2d_reference, numeric_gradient


def assert_gradients_match_numeric(algo, x, w, gy, stride=1, padding=0, dilation=1, groups=1, *, device):
    """dx, dw, db of conv2d_backward(..., algo) on `device` match the numeric gradients of
    <conv(x, w), gy>; x, w, gy are host arrays. Returns dx, dw on the host."""
    args = conv2d_arguments(w.shape, stride, padding, dilation, groups)
    conv = lambda xx, ww: conv2d_reference(xx, ww, None, *args)
    grads = ops.conv2d_backward(*(to_device(a, device) for a in (x, w, gy)), stride, padding, dilation, groups,
                                algo=algo)
    dx, dw, db = map(to_host, grads)
    np.testing.assert_allclose(dx, numeric_gradient(lambda xx: conv(xx, w), x, gy), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dw, numeric_gradient(lambda ww: conv(x, ww), w, gy), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(db, gy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-10)
    return dx, dw
