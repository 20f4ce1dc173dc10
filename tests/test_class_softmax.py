"""The class-factorised output layer: exact probabilities and correct gradients."""

import numpy as np
import pytest
from gradcheck import numerical_grad, rel_error

from rnngen.core import class_softmax as cs
from rnngen.core import model as M


def test_class_bounds_bin_by_frequency():
    counts = np.sort(np.random.default_rng(0).zipf(1.3, size=400))[::-1]
    bounds = cs.make_class_bounds(counts)
    assert bounds[0] == 0 and bounds[-1] == 400 and len(bounds) - 1 == 20  # sqrt(400) classes
    assert all(a < b for a, b in zip(bounds, bounds[1:], strict=False))
    sizes = np.diff(bounds)
    assert sizes[0] < sizes[-1]  # frequent words in small classes, rare words in large ones
    assert list(cs.word_classes(bounds)[[0, 399]]) == [0, 19]
    assert cs.make_class_bounds([5, 3, 1], n_classes=10) == (0, 1, 2, 3)  # at most one per word


def _setup(rng, M_=9, H=4, V=12):
    counts = np.sort(rng.integers(1, 100, size=V))[::-1]
    bounds = cs.make_class_bounds(counts, n_classes=4)
    C = len(bounds) - 1
    return (
        np.tanh(rng.normal(size=(M_, H))),
        rng.normal(size=(H, C)),
        rng.normal(size=C),
        rng.normal(size=(H, V)),
        rng.normal(size=V),
        rng.integers(0, V, size=M_),
        bounds,
    )


def test_probabilities_are_exact(rng):
    h, Wc, bc, W, b, targets, bounds = _setup(rng)
    logp = cs.class_log_probs(h, Wc, bc, W, b, bounds)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-12)
    nll, _ = cs.class_softmax_forward(h, Wc, bc, W, b, targets, bounds)
    assert nll == pytest.approx(-logp[np.arange(len(targets)), targets].sum(), rel=1e-12)


def _joined(W, b):
    """W and b as the rows of one (H+1, V) array Wb, and None for b, as the model passes them."""
    return np.concatenate([W, b[None]]), None


def _named(grads, W, b):
    """The backward pass's (dh, dWc, dbc, dWb) against the inputs it is the gradient of: dWb as a
    whole for a joined Wb, its rows for a separate W and b."""
    dh, dWc, dbc, dWb = grads
    if b is None:
        return {"h": dh, "Wc": dWc, "bc": dbc, "Wb": dWb}
    return {"h": dh, "Wc": dWc, "bc": dbc, "W": dWb[:-1], "b": dWb[-1]}


@pytest.mark.parametrize("joined", [False, True])
def test_gradients(rng, joined):
    """Both ways of adding the bias: in the product ([h 1] @ [W; b]) and as a pass of its own."""
    h, Wc, bc, W, b, targets, bounds = _setup(rng)
    if joined:
        W, b = _joined(W, b)
    _, cache = cs.class_softmax_forward(h, Wc, bc, W, b, targets, bounds, grad_scale=0.25)
    grads = _named(cs.class_softmax_backward(cache, 0.25), W, b)

    def loss():
        return 0.25 * cs.class_softmax_forward(h, Wc, bc, W, b, targets, bounds)[0]

    inputs = {"h": h, "Wc": Wc, "bc": bc, **({"Wb": W} if joined else {"W": W, "b": b})}
    assert set(inputs) == set(grads)
    for name, x in inputs.items():
        assert rel_error(numerical_grad(loss, x), grads[name]) < 1e-6, name


@pytest.mark.parametrize("present", [(1, 2), (0, 2), (1, 3)])
def test_gradients_when_classes_are_missing(rng, present):
    """Only some classes occur (gaps first, in the middle, last): the columns of the others get
    exactly zero dW and db, and all gradients still match finite differences."""
    h, Wc, bc, W, b, _, bounds = _setup(rng, M_=7)
    assert len(bounds) - 1 == 4
    ids = np.concatenate([np.arange(bounds[c], bounds[c + 1]) for c in present])
    targets = rng.choice(ids, size=7)
    targets[:2] = bounds[present[0]], bounds[present[1]]  # both classes occur
    _, cache = cs.class_softmax_forward(h, Wc, bc, W, b, targets, bounds, grad_scale=0.5)
    grads = _named(cs.class_softmax_backward(cache, 0.5), W, b)
    dW, db = grads["W"], grads["b"]
    absent = np.setdiff1d(np.arange(W.shape[1]), ids)
    assert not dW[:, absent].any() and not db[absent].any()
    assert dW[:, ids].all() and db[ids].all()

    def loss():
        return 0.5 * cs.class_softmax_forward(h, Wc, bc, W, b, targets, bounds)[0]

    for name, x in {"h": h, "Wc": Wc, "bc": bc, "W": W, "b": b}.items():
        assert rel_error(numerical_grad(loss, x), grads[name]) < 1e-6, name


def test_training_forward_gives_the_same_loss_and_needs_a_scale(rng):
    """The forward pass that also makes the word gradients gives the loss of the plain one; a
    backward pass after a plain (evaluation) forward, or for another scale, is refused."""
    h, Wc, bc, W, b, targets, bounds = _setup(rng)
    W, b = _joined(W, b)
    plain, cache = cs.class_softmax_forward(h, Wc, bc, W, b, targets, bounds)
    training, other = cs.class_softmax_forward(h, Wc, bc, W, b, targets, bounds, grad_scale=0.5)
    assert plain == training
    with pytest.raises(ValueError, match="grad_scale"):
        cs.class_softmax_backward(cache, 0.5)
    with pytest.raises(ValueError, match="grad_scale"):
        cs.class_softmax_backward(other, 0.25)  # made for another scale


def test_model_with_class_softmax(rng):
    V = 15
    bounds = cs.make_class_bounds(np.arange(V, 0, -1), n_classes=4)
    cfg = M.ModelConfig(V, embed=5, hidden=6, cell="gru", softmax="class", class_bounds=bounds)
    params = M.init_params(cfg, rng, np.float64)
    inputs, targets = rng.integers(0, V, size=(2, 3, 4))
    state0 = rng.normal(size=(1, 1, 4, 6))
    result = M.loss_and_grads(params, cfg, inputs, targets, state0)
    for name, p in params.items():
        num = numerical_grad(lambda: M.loss_and_grads(params, cfg, inputs, targets, state0).loss, p)
        assert rel_error(num, result.grads[name]) < 1e-6, name
    logits, _ = M.step(params, cfg, inputs[0], state0)
    p = np.exp(logits)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)  # step gives exact log-probs


def test_class_config_is_validated():
    with pytest.raises(Exception, match="class bounds"):
        M.ModelConfig(10, softmax="class", class_bounds=(0, 5, 9))
    with pytest.raises(Exception, match="only for"):
        M.ModelConfig(10, class_bounds=(0, 10))
