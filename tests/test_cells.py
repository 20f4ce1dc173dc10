"""Every recurrent cell's backward pass against float64 finite differences (inputs, parameters
and initial state, the LSTM cell state included), the batched recurrence against a naive per-step
loop, and a deliberately broken backward that the check must catch."""

import math
import warnings

import numpy as np
import pytest
from gradcheck import check_vjp

from rnngen.core import cells


def _params(rng, cell, n_in=4, H=5):
    return {
        name: rng.normal(scale=0.5, size=shape)
        for name, shape in cells.cell_param_shapes(cell, n_in, H).items()
    }


@pytest.mark.parametrize("cell", cells.CELLS)
@pytest.mark.parametrize("T", [1, 2, 5])
def test_sequence_backward(rng, cell, T):
    N, n_in, H = 3, 4, 5
    x = rng.normal(size=(T, N, n_in))
    state0 = rng.normal(scale=0.5, size=(cells.STATES[cell], N, H))
    p = _params(rng, cell, n_in, H)
    h, _, cache = cells.sequence_forward(cell, x, state0, p)
    dh = rng.normal(size=h.shape)
    dx, dstate0, grads = cells.sequence_backward(cell, dh, cache)
    assert set(grads) == set(p)
    check_vjp(
        lambda: cells.sequence_forward(cell, x, state0, p)[0],
        {"x": x, "state0": state0, **p},
        {"x": dx, "state0": dstate0, **grads},
        dh,
    )


def test_lstm_final_cell_state_gradient(rng):
    """The gradient arriving at c_T (not used by the model's loss, but part of the layer) is
    propagated correctly too."""
    T, N, n_in, H = 4, 2, 3, 5
    x = rng.normal(size=(T, N, n_in))
    h0, c0 = rng.normal(size=(2, N, H))
    p = _params(rng, "lstm", n_in, H)
    h, c_last, cache = cells.lstm_forward(x, h0, c0, p["Wx"], p["Wh"], p["b"])
    dc_last = rng.normal(size=c_last.shape)
    dx, dh0, dc0, dWx, dWh, db = cells.lstm_backward(np.zeros_like(h), dc_last, cache)
    check_vjp(
        lambda: cells.lstm_forward(x, h0, c0, p["Wx"], p["Wh"], p["b"])[1],
        {"x": x, "h0": h0, "c0": c0, "Wx": p["Wx"], "Wh": p["Wh"], "b": p["b"]},
        {"x": dx, "h0": dh0, "c0": dc0, "Wx": dWx, "Wh": dWh, "b": db},
        dc_last,
    )


def _naive_step(cell, x, state, p):
    """One step written straight from the equations, as a reference for the fused code."""

    def sig(a):
        return 1 / (1 + np.exp(-a))

    H = p["Wh"].shape[0]
    if cell == "rnn":
        return np.tanh(x @ p["Wx"] + state[0] @ p["Wh"] + p["b"])[None]
    if cell == "lstm":
        a = x @ p["Wx"] + state[0] @ p["Wh"] + p["b"]
        i, f, g, o = (
            sig(a[:, :H]),
            sig(a[:, H : 2 * H]),
            np.tanh(a[:, 2 * H : 3 * H]),
            sig(a[:, 3 * H :]),
        )
        c = f * state[1] + i * g
        return np.stack([o * np.tanh(c), c])
    ax, ah = x @ p["Wx"] + p["b"], state[0] @ p["Wh"]
    r, z = sig(ax[:, :H] + ah[:, :H]), sig(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    n = np.tanh(ax[:, 2 * H :] + r * (ah[:, 2 * H :] + p["bhn"]))
    return ((1 - z) * n + z * state[0])[None]  # fmt: skip


@pytest.mark.parametrize("cell", cells.CELLS)
def test_sequence_equals_naive_step_loop(rng, cell):
    T, N, n_in, H = 6, 3, 4, 5
    x = rng.normal(size=(T, N, n_in))
    state = rng.normal(scale=0.5, size=(cells.STATES[cell], N, H))
    p = _params(rng, cell, n_in, H)
    h, final, _ = cells.sequence_forward(cell, x, state, p)
    for t in range(T):
        state = _naive_step(cell, x[t], state, p)
        np.testing.assert_allclose(h[t], state[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(final, state, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", cells.CELLS)
def test_cells_keep_float32(rng, cell):
    x = rng.normal(size=(3, 2, 4)).astype(np.float32)
    state0 = np.zeros((cells.STATES[cell], 2, 5), np.float32)
    p = {k: v.astype(np.float32) for k, v in _params(rng, cell).items()}
    h, state, cache = cells.sequence_forward(cell, x, state0, p)
    assert h.dtype == state.dtype == np.float32
    dx, dstate0, grads = cells.sequence_backward(cell, np.ones_like(h), cache)
    assert dx.dtype == dstate0.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


def test_sigmoid_is_stable_and_precise():
    """No overflow warning at the extremes, and full relative precision for small values."""
    x = np.array([-1000.0, -30.0, -1.0, 0.0, 2.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = cells.sigmoid(x)
        z32 = cells.sigmoid(np.array([-200.0, -80.0, 5.0], dtype=np.float32))
    expected = [0.0] + [1 / (1 + math.exp(-v)) for v in (-30.0, -1.0, 0.0, 2.0)] + [1.0]
    np.testing.assert_allclose(z, expected, rtol=1e-15, atol=0)
    assert z32.dtype == np.float32
    np.testing.assert_allclose(z32, [0.0, 1 / (1 + math.exp(80)), 1 / (1 + math.exp(-5))],
                               rtol=1e-6, atol=0)  # fmt: skip
    out = x.copy()
    assert cells.sigmoid(out, out=out) is out and np.array_equal(out, z)  # in place


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
    x = rng.normal(size=(3, 2, 4))
    h0 = rng.normal(size=(2, 5))
    p = _params(rng, "rnn")
    h, cache = cells.rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"])
    dh = rng.normal(size=h.shape)
    dx, dh0, dWx, dWh, db = _broken_rnn_backward(dh, cache)
    with pytest.raises(AssertionError, match="gradient check failed"):
        check_vjp(
            lambda: cells.rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"])[0],
            {"x": x, "h0": h0, "Wx": p["Wx"], "Wh": p["Wh"], "b": p["b"]},
            {"x": dx, "h0": dh0, "Wx": dWx, "Wh": dWh, "b": db},
            dh,
        )


def test_rnn_step_forward_matches_the_cs231n_test_vector():
    """The published check of cs231n's rnn_step_forward (Stanford CS231n, assignment 3,
    RNN_Captioning.ipynb, "Vanilla RNN: step forward"): linspace inputs, N, D, H = 3, 10, 4, and
    the expected next_h as printed there to 8 decimals."""
    N, D, H = 3, 10, 4
    x = np.linspace(-0.4, 0.7, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.2, 0.5, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.1, 0.9, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.3, 0.7, num=H * H).reshape(H, H)
    b = np.linspace(-0.2, 0.4, num=H)
    expected = np.array([
        [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
        [0.66854692, 0.79562378, 0.87755553, 0.92795967],
        [0.97934501, 0.99144213, 0.99646691, 0.99854353],
    ])  # fmt: skip
    next_h, _ = cells.rnn_step_forward(x, prev_h, Wx, Wh, b)
    np.testing.assert_allclose(next_h, expected, rtol=0, atol=1e-8)
    sequence, _, _ = cells.sequence_forward(
        "rnn", x[None], prev_h[None], {"Wx": Wx, "Wh": Wh, "b": b}
    )
    np.testing.assert_allclose(sequence[0], next_h, rtol=1e-13, atol=1e-15)


def test_rnn_step_backward(rng):
    N, D, H = 4, 5, 6
    shapes = {"x": (N, D), "h_prev": (N, H), "Wx": (D, H), "Wh": (H, H), "b": (H,)}
    inputs = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    h, cache = cells.rnn_step_forward(*inputs.values())
    dh = rng.normal(size=h.shape)
    grads = dict(zip(inputs, cells.rnn_step_backward(dh, cache), strict=True))
    check_vjp(lambda: cells.rnn_step_forward(*inputs.values())[0], inputs, grads, dh)
