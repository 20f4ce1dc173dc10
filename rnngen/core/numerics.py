"""Numerical helpers shared by every layer: the one log-sum-exp.

Works on NumPy arrays and on a GPU library's arrays alike (the NumPy ufuncs dispatch to the
array's own library), so the sampler's NumPy vectors and the model's device arrays use it too.
"""

import numpy as np


def logsumexp(x, axis=-1, keepdims: bool = False):
    """log(sum(exp(x))) along `axis`, without overflow: the largest value is taken out before
    the exponentials. The exponentials stay in x's dtype (float32 for a float32 model, the cost
    of a (N, V) pass) and are summed in float64. Rows that are all -inf give -inf, not NaN."""
    if x.ndim == 1 and not keepdims:  # one distribution (sampling): scalars, less overhead
        top = x.max()
        if not np.isfinite(top):
            return top
        return np.log(np.exp(x - top).sum(dtype=np.float64)) + top
    top = x.max(axis=axis, keepdims=True)
    shift = np.where(np.isfinite(top), top, 0)
    total = np.exp(x - shift).sum(axis=axis, keepdims=True, dtype=np.float64)
    with np.errstate(divide="ignore"):  # an all -inf row: log(0) = -inf, as it should be
        out = np.log(total) + shift
    return out if keepdims else out.squeeze(axis=axis)
