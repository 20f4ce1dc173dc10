"""Optimisers and clipping against straightforward reference formulas."""

import math

import numpy as np
import pytest

from rnngen import backend
from rnngen.optim import SGD, Adagrad, Adam, clip_grad_norm


def _params(rng):
    # one parameter larger than a chunk, with a size that is not a multiple of it
    return {
        "big": rng.normal(size=(3, backend.CHUNK + 123)),
        "small": rng.normal(size=7),
    }


def test_adam_matches_the_formula(rng):
    params = _params(rng)
    ref = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in ref.items()}
    v2 = {k: np.zeros_like(v) for k, v in ref.items()}
    opt = Adam(params, lr=0.01)
    for t in range(1, 4):
        grads = {k: rng.normal(size=p.shape) for k, p in params.items()}
        opt.update(params, {k: g.copy() for k, g in grads.items()})
        for k, g in grads.items():
            m[k] = 0.9 * m[k] + 0.1 * g
            v2[k] = 0.999 * v2[k] + 0.001 * g * g
            m_hat, v_hat = m[k] / (1 - 0.9**t), v2[k] / (1 - 0.999**t)
            ref[k] -= 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)
    for k in params:
        np.testing.assert_allclose(params[k], ref[k], rtol=1e-10, atol=1e-12)


def test_adagrad_and_sgd(rng):
    params = _params(rng)
    start = {k: v.copy() for k, v in params.items()}
    grads = {k: rng.normal(size=p.shape) for k, p in params.items()}
    Adagrad(params, lr=0.1).update(params, {k: g.copy() for k, g in grads.items()})
    for k in params:
        expected = start[k] - 0.1 * grads[k] / (np.abs(grads[k]) + 1e-10)
        np.testing.assert_allclose(params[k], expected, rtol=1e-10)
    SGD(params, lr=0.5).update(params, {k: g.copy() for k, g in grads.items()})  # consumes g
    for k in params:
        expected = start[k] - 0.1 * grads[k] / (np.abs(grads[k]) + 1e-10) - 0.5 * grads[k]
        np.testing.assert_allclose(params[k], expected, rtol=1e-10)


def test_clip_grad_norm(rng):
    grads = {"a": rng.normal(size=(30, 40)), "b": rng.normal(size=5)}
    norm = math.sqrt(sum((g**2).sum() for g in grads.values()))
    before = {k: g.copy() for k, g in grads.items()}
    assert clip_grad_norm(grads, norm * 2) == pytest.approx(norm)
    assert all((grads[k] == before[k]).all() for k in grads)  # under the limit: untouched
    assert clip_grad_norm(grads, 1.0) == pytest.approx(norm)
    clipped = math.sqrt(sum((g**2).sum() for g in grads.values()))
    assert clipped == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("cls", [SGD, Adagrad, Adam])
def test_state_round_trip(rng, cls):
    """An optimiser restored from state() continues exactly like the original."""
    params = _params(rng)
    opt = cls(params, lr=0.05)
    grads = [{k: rng.normal(size=p.shape) for k, p in params.items()} for _ in range(4)]
    for g in grads[:2]:
        opt.update(params, {k: v.copy() for k, v in g.items()})
    opt.lr /= 2
    scalars, arrays = opt.state()
    twin_params = {k: v.copy() for k, v in params.items()}
    twin = cls(twin_params, lr=1.0)
    twin.load_state(scalars, {k: v.copy() for k, v in arrays.items()})
    for g in grads[2:]:
        opt.update(params, {k: v.copy() for k, v in g.items()})
        twin.update(twin_params, {k: v.copy() for k, v in g.items()})
    for k in params:
        assert (params[k] == twin_params[k]).all()


def test_adam_threads_do_not_change_results(rng):
    params = {"big": rng.normal(size=(5, backend.CHUNK + 7)).astype(np.float32)}
    copies = [{k: v.copy() for k, v in params.items()} for _ in range(3)]
    optimizers = [Adam(p, lr=0.01) for p in copies]
    for opt, workers in zip(optimizers, (1, 2, 3), strict=True):
        opt.workers = workers
    for _ in range(3):
        grads = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
        for opt, p in zip(optimizers, copies, strict=True):
            opt.update(p, {k: g.copy() for k, g in grads.items()})
    assert copies[0]["big"].tobytes() == copies[1]["big"].tobytes() == copies[2]["big"].tobytes()
