"""The non-recurrent layers' backward passes against float64 finite differences."""

import numpy as np
import pytest
from gradcheck import check_vjp, numerical_grad, rel_error
from reference import softmax_cross_entropy

from rnngen.core import layers


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


def _joined(W, b):
    """W and b as the rows of one (H+1, V) array Wb, and None for b, as the model passes them."""
    return np.concatenate([W, b[None]]), None


@pytest.mark.parametrize("joined", [False, True], ids=["bias-pass", "bias-in-product"])
@pytest.mark.parametrize("weight_scale", [0.3, 30.0], ids=["bounded", "shifted"])
def test_softmax_output_backward(rng, weight_scale, joined):
    """The fused output layer + softmax + cross-entropy, on both sides of the overflow bound,
    with the bias added in the pass over the logits or coming out of the product."""
    M, H, V = 6, 4, 7
    h = np.tanh(rng.normal(size=(M, H)))
    W = rng.normal(scale=weight_scale, size=(H, V))
    b = rng.normal(size=V)
    logits = h @ W + b
    if joined:
        W, b = _joined(W, b)
    targets = rng.integers(0, V, size=M)
    nll, cache = layers.softmax_output_forward(h, W, b, targets)
    dh, dWb = layers.softmax_output_backward(cache, scale=0.5)
    assert dWb.shape == (H + 1, V)
    ref_loss, ref_dlogits = softmax_cross_entropy(logits, targets)
    assert nll == pytest.approx(ref_loss * M, rel=1e-12)
    inputs = {
        "h": (h, dh),
        **({"Wb": (W, dWb)} if joined else {"W": (W, dWb[:H]), "b": (b, dWb[H])}),
    }
    for name, (x, analytic) in inputs.items():
        num = numerical_grad(lambda: 0.5 * layers.softmax_output_forward(h, W, b, targets)[0], x)
        assert rel_error(num, analytic) < 1e-6, name
    np.testing.assert_allclose(dWb[:H], 0.5 * M * h.T @ ref_dlogits, rtol=1e-10, atol=1e-12)


def test_softmax_cross_entropy_reference(rng):
    logits = rng.normal(size=(6, 5)) * 3
    targets = rng.integers(0, 5, size=6)
    loss, dlogits = softmax_cross_entropy(logits, targets)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(6), targets]).mean(), rel=1e-12)
    num = numerical_grad(lambda: softmax_cross_entropy(logits, targets)[0], logits)
    assert rel_error(num, dlogits) < 1e-6


def test_softmax_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0]])
    loss, dlogits = softmax_cross_entropy(logits, np.array([0]))
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    h = np.ones((1, 1))
    nll, cache = layers.softmax_output_forward(h, logits, np.zeros(3), np.array([2]))
    assert nll == pytest.approx(2000.0)
    assert all(np.isfinite(g).all() for g in layers.softmax_output_backward(cache))


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


@pytest.mark.parametrize("joined", [False, True], ids=["bias-pass", "bias-in-product"])
def test_softmax_output_backward_refuses_a_second_call_on_one_cache(rng, joined):
    """The backward pass turns the cached exponentials into its scratch, so a second call on the
    same cache would return wrong gradients: it is an error instead."""
    M, H, V = 6, 4, 7
    h, W, b = rng.normal(size=(M, H)), rng.normal(size=(H, V)), rng.normal(size=V)
    if joined:
        W, b = _joined(W, b)
    targets = rng.integers(0, V, size=M)
    _, cache = layers.softmax_output_forward(h, W, b, targets)
    layers.softmax_output_backward(cache)
    with pytest.raises(ValueError, match="ran on this cache already"):
        layers.softmax_output_backward(cache)
