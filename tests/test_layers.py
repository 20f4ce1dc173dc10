"""Every layer's backward pass against float64 finite differences, and the batched recurrence
against a naive per-step loop."""

import numpy as np
import pytest
from gradcheck import check_vjp, numerical_grad, rel_error

from rnngen import layers


def test_embedding_backward(rng):
    ids = rng.integers(0, 7, size=(4, 3))
    W = rng.normal(size=(7, 5))
    out, cache = layers.embedding_forward(ids, W)
    dout = rng.normal(size=out.shape)
    dW = layers.embedding_backward(dout, cache)
    check_vjp(lambda: layers.embedding_forward(ids, W)[0], {"W": W}, {"W": dW}, dout)


def test_embedding_is_one_hot_times_matrix(rng):
    ids = rng.integers(0, 7, size=(4, 3))
    W = rng.normal(size=(7, 5))
    one_hot = np.eye(7)[ids]  # (T, N, V)
    np.testing.assert_allclose(layers.embedding_forward(ids, W)[0], one_hot @ W)


def _rnn_inputs(rng, T, N=3, E=4, H=5):
    return {
        "x": rng.normal(size=(T, N, E)),
        "h0": rng.normal(size=(N, H)),
        "Wx": rng.normal(scale=0.5, size=(E, H)),
        "Wh": rng.normal(scale=0.5, size=(H, H)),
        "b": rng.normal(size=H),
    }


def test_rnn_step_backward(rng):
    p = _rnn_inputs(rng, T=1)
    x = p["x"][0]
    h, cache = layers.rnn_step_forward(x, p["h0"], p["Wx"], p["Wh"], p["b"])
    dh = rng.normal(size=h.shape)
    dx, dh_prev, dWx, dWh, db = layers.rnn_step_backward(dh, cache)
    check_vjp(
        lambda: layers.rnn_step_forward(x, p["h0"], p["Wx"], p["Wh"], p["b"])[0],
        {"x": x, "h0": p["h0"], "Wx": p["Wx"], "Wh": p["Wh"], "b": p["b"]},
        {"x": dx, "h0": dh_prev, "Wx": dWx, "Wh": dWh, "b": db},
        dh,
    )


@pytest.mark.parametrize("T", [1, 2, 6])
def test_rnn_backward(rng, T):
    p = _rnn_inputs(rng, T)
    h, cache = layers.rnn_forward(**p)
    dh = rng.normal(size=h.shape)
    dx, dh0, dWx, dWh, db = layers.rnn_backward(dh, cache)
    check_vjp(
        lambda: layers.rnn_forward(**p)[0],
        p,
        {"x": dx, "h0": dh0, "Wx": dWx, "Wh": dWh, "b": db},
        dh,
    )


def test_rnn_forward_equals_step_loop(rng):
    p = _rnn_inputs(rng, T=7)
    h, _ = layers.rnn_forward(**p)
    h_prev = p["h0"]
    for t in range(7):
        h_prev, _ = layers.rnn_step_forward(p["x"][t], h_prev, p["Wx"], p["Wh"], p["b"])
        np.testing.assert_allclose(h[t], h_prev, rtol=1e-12, atol=1e-12)


def test_rnn_backward_equals_step_loop(rng):
    p = _rnn_inputs(rng, T=5)
    h, cache = layers.rnn_forward(**p)
    dh = rng.normal(size=h.shape)
    dx, dh0, dWx, dWh, db = layers.rnn_backward(dh, cache)
    caches, h_prev = [], p["h0"]
    for t in range(5):
        h_prev, c = layers.rnn_step_forward(p["x"][t], h_prev, p["Wx"], p["Wh"], p["b"])
        caches.append(c)
    carry = np.zeros_like(p["h0"])
    sums = [np.zeros_like(p[k]) for k in ("Wx", "Wh", "b")]
    for t in range(4, -1, -1):
        dx_t, carry, *dparams = layers.rnn_step_backward(dh[t] + carry, caches[t])
        np.testing.assert_allclose(dx[t], dx_t, rtol=1e-10, atol=1e-12)
        for s, d in zip(sums, dparams, strict=True):
            s += d
    np.testing.assert_allclose(dh0, carry, rtol=1e-10, atol=1e-12)
    for got, want in zip((dWx, dWh, db), sums, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_rnn_keeps_float32(rng):
    p = {k: v.astype(np.float32) for k, v in _rnn_inputs(rng, T=3).items()}
    h, cache = layers.rnn_forward(**p)
    assert h.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layers.rnn_backward(np.ones_like(h), cache))


def test_affine_backward(rng):
    x, W, b = rng.normal(size=(6, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)
    out, cache = layers.affine_forward(x, W, b)
    dout = rng.normal(size=out.shape)
    dx, dW, db = layers.affine_backward(dout, cache)
    check_vjp(
        lambda: layers.affine_forward(x, W, b)[0],
        {"x": x, "W": W, "b": b},
        {"x": dx, "W": dW, "b": db},
        dout,
    )


def test_softmax_cross_entropy(rng):
    logits = rng.normal(size=(6, 5)) * 3
    targets = rng.integers(0, 5, size=6)
    loss, dlogits = layers.softmax_cross_entropy(logits, targets)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(6), targets]).mean(), rel=1e-12)
    num = numerical_grad(lambda: layers.softmax_cross_entropy(logits, targets)[0], logits)
    assert rel_error(num, dlogits) < 1e-6
    assert layers.cross_entropy_sum(logits, targets) == pytest.approx(loss * 6, rel=1e-12)


def test_softmax_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0]])
    loss, dlogits = layers.softmax_cross_entropy(logits, np.array([0]))
    assert np.isfinite(loss) and np.isfinite(dlogits).all()


def _broken_rnn_backward(dh, cache):
    """rnn_backward without the tanh derivative: the kind of bug the check must catch."""
    x, h0, h, Wx, Wh = cache
    T, N, E = x.shape
    da = np.empty_like(h)
    carry = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        da[t] = dh[t] + carry
        carry = da[t] @ Wh.T
    h_prev = np.concatenate([h0[None], h[:-1]])
    flat = da.reshape(-1, Wh.shape[0])
    return (
        (flat @ Wx.T).reshape(T, N, E),
        carry,
        x.reshape(-1, E).T @ flat,
        h_prev.reshape(-1, Wh.shape[0]).T @ flat,
        flat.sum(axis=0),
    )


def test_gradient_check_catches_a_broken_backward(rng):
    p = _rnn_inputs(rng, T=3)
    h, cache = layers.rnn_forward(**p)
    dh = rng.normal(size=h.shape)
    dx, dh0, dWx, dWh, db = _broken_rnn_backward(dh, cache)
    with pytest.raises(AssertionError, match="gradient check failed"):
        check_vjp(
            lambda: layers.rnn_forward(**p)[0],
            p,
            {"x": dx, "h0": dh0, "Wx": dWx, "Wh": dWh, "b": db},
            dh,
        )
