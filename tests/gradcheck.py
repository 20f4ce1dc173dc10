"""Finite-difference gradient checking in float64 (a helper for the tests, not a test module)."""

import numpy as np


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f() with respect to every entry of x, which f
    reads in place."""
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        plus = f()
        x[i] = old - eps
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def rel_error(a, b) -> float:
    """Largest absolute difference relative to the arrays' scale. Normalising by the largest
    entry (not entry by entry) keeps tiny entries' round-off from dominating, while any real
    mistake in a backward pass still shows as an error near 1."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-12)
    return float(np.max(np.abs(a - b))) / scale


def check_vjp(forward, inputs: dict, backward_grads: dict, dout, tol=1e-6):
    """Check analytic gradients of sum(forward() * dout) for every named input.

    forward() reads the arrays in `inputs` (modified in place during the check); backward_grads
    maps the same names to the analytic gradients. Returns {name: relative error} and asserts
    every error is below tol.
    """
    errors = {}
    for name, x in inputs.items():
        num = numerical_grad(lambda: float(np.sum(forward() * dout)), x)
        errors[name] = rel_error(num, backward_grads[name])
    bad = {k: v for k, v in errors.items() if not v < tol}
    assert not bad, f"gradient check failed: {bad}"
    return errors
