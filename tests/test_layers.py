"""The non-recurrent layers' backward passes against float64 finite differences."""

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


def test_dropout(rng):
    x = rng.normal(size=(50, 40))
    out, mask = layers.dropout_forward(x, 0.25, np.random.default_rng(0))
    dropped = out == 0
    assert 0.2 < dropped.mean() < 0.3
    np.testing.assert_allclose(out[~dropped], x[~dropped] / 0.75)
    dout = rng.normal(size=x.shape)
    dx = layers.dropout_backward(dout, mask)
    check_vjp(lambda: layers.dropout_forward(x, 0.25, np.random.default_rng(0))[0],
              {"x": x}, {"x": dx}, dout)  # fmt: skip
    same, no_mask = layers.dropout_forward(x, 0.25, None)  # evaluation: the identity
    assert same is x and no_mask is None
