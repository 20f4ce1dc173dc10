"""Recurrent cells, each as a forward/backward pair over a whole sequence (and, for the tanh RNN,
the single-step pair, checked against the published cs231n test vector).

Letters: T time steps, N batch, I input size (E for the first layer, H above), H hidden. Sequences
are time-major, (T, N, ...). Gate matrices are fused: an LSTM has one (I, 4H) input matrix and one
(H, 4H) recurrent matrix for its four gates, a GRU (I, 3H) and (H, 3H), so the input projection of
all T steps is one (T*N, I) product and each step one (N, H) product. Gate orders follow PyTorch
(LSTM: input, forget, cell, output; GRU: reset, update, new), so weights map one to one.

    rnn   h_t = tanh(x_t Wx + h_{t-1} Wh + b)
    lstm  i, f, g, o = sig, sig, tanh, sig of (x_t Wx + h_{t-1} Wh + b)
          c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)
    gru   r, z = sig(x_t Wx_rz + h_{t-1} Wh_rz + b_rz)
          n = tanh(x_t Wx_n + b_n + r * (h_{t-1} Wh_n + bhn));   h_t = (1 - z) * n + z * h_{t-1}

The state of a layer is a (K, N, H) array: K = 1 (h) for rnn and gru, K = 2 (h, c) for lstm.
`sequence_forward` and `sequence_backward` dispatch on the cell name with one signature, so the
model treats all cells alike (generation runs `sequence_forward` one step at a time).
"""

from typing import NamedTuple

import numpy

from . import backend

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # fused blocks of H columns in Wx and Wh
STATES = {"rnn": 1, "lstm": 2, "gru": 1}  # K, state vectors per layer


def cell_param_shapes(cell: str, n_in: int, H: int) -> dict:
    """Parameter name -> shape for one layer of `cell` with input size n_in."""
    G = GATES[cell]
    shapes = {"Wx": (n_in, G * H), "Wh": (H, G * H), "b": (G * H,)}
    if cell == "gru":
        shapes["bhn"] = (H,)  # recurrent bias of the new gate, inside r * (...)
    return shapes


def sigmoid(x, out=None):
    """The logistic function 1 / (1 + exp(-x)), into out (may be x). Where exp(-x) overflows (x
    below about -88 in float32) the result is 0, within the smallest normal number of the true
    value; the overflow warning is silenced. Four passes, no temporaries."""
    xp = backend.xp
    out = xp.negative(x, out=out)
    with numpy.errstate(over="ignore"):  # NumPy's warning state; other array modules ignore it
        xp.exp(out, out=out)
    out += 1
    return xp.reciprocal(out, out=out)


def _recurrent_grad(Wh, da_t, out_T):
    """The gradient flowing back into h_{t-1}: da_t (N, G) @ Wh.T, computed as Wh @ da_t.T into
    out_T (H, N) and returned as its (N, H) transposed view. For these small per-step shapes
    the product in this orientation is faster (here 50 against 90 us for N 20, H 200, G 800)."""
    backend.xp.matmul(Wh, da_t.T, out=out_T)
    return out_T.T


# --- tanh RNN --------------------------------------------------------------------------------


# One step of the tanh RNN, the textbook pair (cs231n's rnn_step_forward/backward). The model does
# not call it (rnn_forward batches the input products of all steps); tests check it against the
# published cs231n test vector and finite differences, and rnn_forward against it step by step.


class RNNStepCache(NamedTuple):
    x: object  # (N, I)
    h_prev: object  # (N, H)
    h: object  # (N, H)
    Wx: object
    Wh: object


def rnn_step_forward(x, h_prev, Wx, Wh, b):
    """x (N, I), h_prev (N, H), Wx (I, H), Wh (H, H), b (H,) -> h (N, H), cache."""
    h = backend.xp.tanh(x @ Wx + h_prev @ Wh + b)
    return h, RNNStepCache(x, h_prev, h, Wx, Wh)


def rnn_step_backward(dh, cache):
    """dh (N, H) -> dx (N, I), dh_prev (N, H), dWx (I, H), dWh (H, H), db (H,)."""
    da = dh * (1 - cache.h**2)  # tanh' from the output
    return (da @ cache.Wx.T, da @ cache.Wh.T, cache.x.T @ da, cache.h_prev.T @ da, da.sum(axis=0))


class RNNCache(NamedTuple):
    x: object  # (T, N, I)
    h0: object  # (N, H)
    h: object  # (T, N, H), every step's output
    Wx: object
    Wh: object


def rnn_forward(x, h0, Wx, Wh, b):
    """x (T, N, I), h0 (N, H) -> h (T, N, H), cache.

    The input projection of all T steps is one product; the loop only adds the recurrent term,
    writing into a preallocated buffer.
    """
    xp = backend.xp
    T, N, _ = x.shape
    H = Wh.shape[0]
    h = (x.reshape(T * N, -1) @ Wx).reshape(T, N, H)  # starts as the input projection
    h += b
    h_prev = h0
    recurrent = xp.empty((N, H), dtype=h.dtype)
    for t in range(T):
        xp.matmul(h_prev, Wh, out=recurrent)
        h[t] += recurrent
        xp.tanh(h[t], out=h[t])
        h_prev = h[t]
    return h, RNNCache(x, h0, h, Wx, Wh)


def rnn_backward(dh, cache):
    """dh (T, N, H), the loss gradient w.r.t. every step's output ->
    dx (T, N, I), dh0 (N, H), dWx (I, H), dWh (H, H), db (H,)."""
    xp = backend.xp
    x, h0, h, Wx, Wh = cache
    T, N, _ = x.shape
    H = Wh.shape[0]
    da = xp.empty_like(h)  # (T, N, H) gradient w.r.t. each step's pre-activation
    carry_T = xp.zeros((H, N), dtype=h.dtype)
    carry = carry_T.T  # (N, H) gradient flowing back from step t+1 into h_t
    for t in range(T - 1, -1, -1):
        xp.add(dh[t], carry, out=da[t])
        da[t] *= 1 - h[t] ** 2
        carry = _recurrent_grad(Wh, da[t], carry_T)
    h_prev = xp.concatenate([h0[None], h[:-1]])  # (T, N, H), the state each step started from
    da_flat = da.reshape(T * N, H)
    dWx = x.reshape(T * N, -1).T @ da_flat
    dWh = h_prev.reshape(T * N, H).T @ da_flat
    dx = (da_flat @ Wx.T).reshape(x.shape)
    return dx, carry, dWx, dWh, da_flat.sum(axis=0)


# --- LSTM ------------------------------------------------------------------------------------


class LSTMCache(NamedTuple):
    x: object  # (T, N, I)
    h0: object  # (N, H)
    c0: object  # (N, H)
    gates: object  # (T, N, 4H) activated i, f, g, o
    c: object  # (T, N, H) cell states
    tanh_c: object  # (T, N, H)
    h: object  # (T, N, H)
    Wx: object
    Wh: object


def lstm_forward(x, h0, c0, Wx, Wh, b):
    """x (T, N, I), h0, c0 (N, H), Wx (I, 4H), Wh (H, 4H), b (4H,) -> h (T, N, H), c_T, cache."""
    xp = backend.xp
    T, N, _ = x.shape
    H = Wh.shape[0]
    gates = (x.reshape(T * N, -1) @ Wx).reshape(T, N, 4 * H)  # input projection, all steps
    gates += b
    c = xp.empty((T, N, H), dtype=gates.dtype)
    tanh_c = xp.empty_like(c)
    h = xp.empty_like(c)
    recurrent = xp.empty((N, 4 * H), dtype=gates.dtype)
    # All four gates go through one logistic pass over the contiguous (N, 4H) row block: the
    # cell gate as tanh(x) = 2 sigmoid(2x) - 1, so its pre-activation is scaled by -2 where the
    # others' are negated. Fewer, larger calls than a sigmoid and a tanh over strided column blocks.
    minus = xp.full(4 * H, -1, dtype=gates.dtype)
    minus[2 * H : 3 * H] = -2
    h_prev, c_prev = h0, c0
    with numpy.errstate(over="ignore"):  # where exp overflows to inf the logistic is exactly 0
        for t in range(T):
            a = gates[t]
            xp.matmul(h_prev, Wh, out=recurrent)
            a += recurrent
            a *= minus
            xp.exp(a, out=a)
            a += 1
            xp.reciprocal(a, out=a)  # sigmoid for i, f, o; sigmoid(2x) for g
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            g *= 2
            g -= 1
            xp.multiply(f, c_prev, out=c[t])
            c[t] += i * g
            xp.tanh(c[t], out=tanh_c[t])
            xp.multiply(o, tanh_c[t], out=h[t])
            h_prev, c_prev = h[t], c[t]
    return h, c[-1], LSTMCache(x, h0, c0, gates, c, tanh_c, h, Wx, Wh)


def lstm_backward(dh, dc_last, cache):
    """dh (T, N, H) w.r.t. every output, dc_last (N, H) w.r.t. the final cell state ->
    dx (T, N, I), dh0 (N, H), dc0 (N, H), dWx, dWh, db.

    Each gate's pre-activation gradient is a factor known from the forward pass times dc or dh
    of its step: the factors of all steps are computed first, in a few large passes, so the loop
    over time keeps only what depends on the step before (a handful of small operations)."""
    xp = backend.xp
    x, h0, c0, gates, c, tanh_c, h, Wx, Wh = cache
    T, N, _ = x.shape
    H = Wh.shape[0]
    i, f, g, o = (gates[..., k * H : (k + 1) * H] for k in range(4))  # (T, N, H) each
    c_prev = xp.concatenate([c0[None], c[:-1]])  # (T, N, H), the cell state each step began with
    # da (T, N, 4H), w.r.t. the gates' pre-activations, starts as the factors:
    # di = dc g i(1-i), df = dc c_prev f(1-f), dg = dc i (1-g^2), do = dh tanh(c) o(1-o)
    da = xp.empty_like(gates)
    for k, gate, other in ((0, i, g), (1, f, c_prev), (3, o, tanh_c)):
        block = da[..., k * H : (k + 1) * H]
        xp.subtract(1, gate, out=block)
        block *= gate
        block *= other
    dg = da[..., 2 * H : 3 * H]
    xp.multiply(g, g, out=dg)
    xp.subtract(1, dg, out=dg)
    dg *= i
    dc_from_dh = 1 - tanh_c**2  # dc += dh o (1 - tanh(c)^2)
    dc_from_dh *= o
    gates_c = da.reshape(T, N, 4, H)[:, :, :3]  # a view of the three blocks scaled by dc
    carry_T = xp.zeros((H, N), dtype=h.dtype)
    carry_h = carry_T.T  # (N, H)
    carry_c = dc_last.copy()
    dh_t = xp.empty((N, H), dtype=h.dtype)
    dc = xp.empty((N, H), dtype=h.dtype)
    for t in range(T - 1, -1, -1):
        xp.add(dh[t], carry_h, out=dh_t)
        xp.multiply(dh_t, dc_from_dh[t], out=dc)
        dc += carry_c
        gates_c[t] *= dc[:, None, :]
        da[t, :, 3 * H :] *= dh_t
        carry_c = dc * f[t]
        carry_h = _recurrent_grad(Wh, da[t], carry_T)
    h_prev = xp.concatenate([h0[None], h[:-1]])
    da_flat = da.reshape(T * N, 4 * H)
    dWx = x.reshape(T * N, -1).T @ da_flat
    dWh = h_prev.reshape(T * N, H).T @ da_flat
    dx = (da_flat @ Wx.T).reshape(x.shape)
    return dx, carry_h, carry_c, dWx, dWh, da_flat.sum(axis=0)


# --- GRU -------------------------------------------------------------------------------------


class GRUCache(NamedTuple):
    x: object  # (T, N, I)
    h0: object  # (N, H)
    gates: object  # (T, N, 3H) activated r, z, n
    hn: object  # (T, N, H) h_{t-1} Wh_n + bhn, the recurrent part of the new gate
    h: object  # (T, N, H)
    Wx: object
    Wh: object


def gru_forward(x, h0, Wx, Wh, b, bhn):
    """x (T, N, I), h0 (N, H), Wx (I, 3H), Wh (H, 3H), b (3H,), bhn (H,) -> h (T, N, H), cache."""
    xp = backend.xp
    T, N, _ = x.shape
    H = Wh.shape[0]
    gates = (x.reshape(T * N, -1) @ Wx).reshape(T, N, 3 * H)  # input projection, all steps
    gates += b
    hn = xp.empty((T, N, H), dtype=gates.dtype)
    h = xp.empty_like(hn)
    recurrent = xp.empty((N, 3 * H), dtype=gates.dtype)
    h_prev = h0
    for t in range(T):
        a = gates[t]
        xp.matmul(h_prev, Wh, out=recurrent)
        a[:, : 2 * H] += recurrent[:, : 2 * H]
        sigmoid(a[:, : 2 * H], out=a[:, : 2 * H])
        xp.add(recurrent[:, 2 * H :], bhn, out=hn[t])
        r, z = a[:, :H], a[:, H : 2 * H]
        a[:, 2 * H :] += r * hn[t]
        n = xp.tanh(a[:, 2 * H :], out=a[:, 2 * H :])
        xp.multiply(z, h_prev - n, out=h[t])  # h = n + z * (h_prev - n)
        h[t] += n
        h_prev = h[t]
    return h, GRUCache(x, h0, gates, hn, h, Wx, Wh)


def gru_backward(dh, cache):
    """dh (T, N, H) -> dx (T, N, I), dh0 (N, H), dWx, dWh, db, dbhn."""
    xp = backend.xp
    x, h0, gates, hn, h, Wx, Wh = cache
    T, N, _ = x.shape
    H = Wh.shape[0]
    dx_gates = xp.empty_like(gates)  # (T, N, 3H) w.r.t. the input projection (plus b)
    dh_gates = xp.empty_like(gates)  # (T, N, 3H) w.r.t. the recurrent product (plus bhn)
    carry_T = xp.empty((H, N), dtype=h.dtype)
    carry = xp.zeros((N, H), dtype=h.dtype)
    for t in range(T - 1, -1, -1):
        r, z, n = (gates[t, :, k * H : (k + 1) * H] for k in range(3))
        h_prev = h[t - 1] if t > 0 else h0
        dh_t = dh[t] + carry
        dn = dh_t * (1 - z) * (1 - n**2)  # w.r.t. the new gate's pre-activation
        dr = dn * hn[t] * r * (1 - r)
        dz = dh_t * (h_prev - n) * z * (1 - z)
        dx_gates[t, :, :H] = dr
        dx_gates[t, :, H : 2 * H] = dz
        dx_gates[t, :, 2 * H :] = dn
        dh_gates[t, :, : 2 * H] = dx_gates[t, :, : 2 * H]
        dh_gates[t, :, 2 * H :] = dn * r
        carry = dh_t * z + _recurrent_grad(Wh, dh_gates[t], carry_T)
    h_prev = xp.concatenate([h0[None], h[:-1]])
    dxg = dx_gates.reshape(T * N, 3 * H)
    dhg = dh_gates.reshape(T * N, 3 * H)
    dWx = x.reshape(T * N, -1).T @ dxg
    dWh = h_prev.reshape(T * N, H).T @ dhg
    dx = (dxg @ Wx.T).reshape(x.shape)
    return dx, carry, dWx, dWh, dxg.sum(axis=0), dhg[:, 2 * H :].sum(axis=0)


# --- one interface for the model -----------------------------------------------------------


def sequence_forward(cell, x, state0, p):
    """x (T, N, I), state0 (K, N, H), p the layer's params ->
    h (T, N, H), the final state (K, N, H), cache."""
    xp = backend.xp
    if cell == "rnn":
        h, cache = rnn_forward(x, state0[0], p["Wx"], p["Wh"], p["b"])
        return h, h[-1][None], cache
    if cell == "lstm":
        h, c_last, cache = lstm_forward(x, state0[0], state0[1], p["Wx"], p["Wh"], p["b"])
        return h, xp.stack([h[-1], c_last]), cache
    h, cache = gru_forward(x, state0[0], p["Wx"], p["Wh"], p["b"], p["bhn"])
    return h, h[-1][None], cache


def sequence_backward(cell, dh, cache):
    """dh (T, N, H) -> dx (T, N, I), dstate0 (K, N, H), grads of the layer's params (a dict).

    Nothing flows into the final state from the loss of this batch, so its gradient is zero."""
    xp = backend.xp
    if cell == "rnn":
        dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)
        return dx, dh0[None], {"Wx": dWx, "Wh": dWh, "b": db}
    if cell == "lstm":
        dx, dh0, dc0, dWx, dWh, db = lstm_backward(dh, xp.zeros_like(cache.c0), cache)
        return dx, xp.stack([dh0, dc0]), {"Wx": dWx, "Wh": dWh, "b": db}
    dx, dh0, dWx, dWh, db, dbhn = gru_backward(dh, cache)
    return dx, dh0[None], {"Wx": dWx, "Wh": dWh, "b": db, "bhn": dbhn}
