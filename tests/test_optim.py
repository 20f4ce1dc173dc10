"""Optimisers and clipping against straightforward reference formulas."""

import math

import numpy as np
import pytest
from reference import clip_grad_norm

from rnngen.core import backend
from rnngen.core import model as M
from rnngen.core.layers import RowSparse
from rnngen.core.optim import (
    SGD,
    Adagrad,
    Adam,
    clip_and_update,
    clip_scale,
    make_optimizer,
)
from rnngen.training.train import TrainConfig, train


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


def test_adagrad_matches_the_formula_over_several_steps(rng):
    """Adagrad's step divides by the root of the squares of every gradient so far (Duchi et al.),
    here summed all at once with cumsum rather than accumulated: dense and row-sparse gradients,
    with a clipping scale; a zero row of a sparse step changes nothing."""
    params = {**_params(rng), "embed": rng.normal(size=(9, 4))}
    start = {k: v.copy() for k, v in params.items()}
    opt = Adagrad(params, lr=0.05)
    steps, scales = 4, (1.0, 0.5, 1.0, 0.25)
    dense = {k: np.zeros((steps, *v.shape)) for k, v in params.items()}  # the gradients applied
    for t in range(steps):
        grads = {k: rng.normal(size=v.shape) for k, v in params.items() if k != "embed"}
        rows = np.sort(rng.choice(9, size=3 + t, replace=False))
        values = rng.normal(size=(len(rows), 4))
        for k, g in grads.items():
            dense[k][t] = scales[t] * g
        dense["embed"][t][rows] = scales[t] * values
        grads = {k: g.copy() for k, g in grads.items()}
        grads["embed"] = RowSparse(rows, values.copy(), (9, 4))
        opt.update(params, grads, scales[t])
    for k in params:
        g = dense[k]
        sum_sq = np.cumsum(g * g, axis=0)
        steps_taken = np.where(g != 0, 0.05 * g / (np.sqrt(sum_sq) + 1e-10), 0.0)
        np.testing.assert_allclose(params[k], start[k] - steps_taken.sum(axis=0), rtol=1e-10,
                                   atol=1e-12, err_msg=k)  # fmt: skip


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


# --- row-sparse embedding gradients ---------------------------------------------------------


def _row_sparse_case(rng, V=40, E=6):
    """params with an embedding, a dense grad dict and the same with the embedding RowSparse."""
    params = {"embed": rng.normal(size=(V, E)), "w": rng.normal(size=(3, 4))}
    rows = np.sort(rng.choice(V, size=9, replace=False))
    values = rng.normal(size=(len(rows), E))
    sparse = RowSparse(rows, values, (V, E))
    return params, {"embed": sparse, "w": rng.normal(size=(3, 4))}


def _dense(grads):
    return {k: g.dense() if isinstance(g, RowSparse) else g.copy() for k, g in grads.items()}


def _copy(grads):
    return {
        k: RowSparse(g.rows, g.values.copy(), g.shape) if isinstance(g, RowSparse) else g.copy()
        for k, g in grads.items()
    }


@pytest.mark.parametrize("cls", [SGD, Adagrad])
def test_sparse_rows_give_exactly_the_dense_update(rng, cls):
    """For SGD and Adagrad a zero gradient row changes nothing, so updating only the present
    rows is the dense update, bit for bit, over several steps with different rows."""
    params, _ = _row_sparse_case(rng)
    dense_params = {k: v.copy() for k, v in params.items()}
    sparse_opt, dense_opt = cls(params, 0.1), cls(dense_params, 0.1)
    for _ in range(3):
        _, grads = _row_sparse_case(rng)
        dense_opt.update(dense_params, _dense(grads))
        sparse_opt.update(params, _copy(grads))
    for k in params:
        assert np.array_equal(params[k], dense_params[k]), k


def test_lazy_adam_updates_only_present_rows(rng):
    params, grads = _row_sparse_case(rng)
    dense_params = {k: v.copy() for k, v in params.items()}
    lazy, dense = Adam(params, 0.01, lazy=True), Adam(dense_params, 0.01)
    # step 1: the moments start at zero, so absent rows do not move in either form
    lazy.update(params, _copy(grads))
    dense.update(dense_params, _dense(grads))
    for k in params:
        assert np.array_equal(params[k], dense_params[k]), k
    # step 2 with other rows: present rows follow Adam's formula with the lazily kept moments,
    # absent rows keep their values (dense Adam would move the rows of step 1 by momentum)
    m = np.zeros_like(params["embed"])
    m[grads["embed"].rows] = 0.1 * grads["embed"].values
    v = np.zeros_like(m)
    v[grads["embed"].rows] = 0.001 * grads["embed"].values ** 2
    _, grads2 = _row_sparse_case(rng)
    before = params["embed"].copy()
    lazy.update(params, _copy(grads2))
    rows, g = grads2["embed"].rows, grads2["embed"].values
    m_r, v_r = 0.9 * m[rows] + 0.1 * g, 0.999 * v[rows] + 0.001 * g * g
    expected = before[rows] - 0.01 * (m_r / (1 - 0.9**2)) / (np.sqrt(v_r / (1 - 0.999**2)) + 1e-8)
    np.testing.assert_allclose(params["embed"][rows], expected, rtol=1e-12)
    absent = np.setdiff1d(np.arange(len(before)), rows)
    assert np.array_equal(params["embed"][absent], before[absent])
    np.testing.assert_allclose(lazy.m["embed"][absent], m[absent], rtol=1e-12)  # not decayed


def test_clipping_a_row_sparse_gradient(rng):
    _, grads = _row_sparse_case(rng)
    dense = _dense(grads)
    assert clip_grad_norm(grads, 0.5) == pytest.approx(clip_grad_norm(dense, 0.5), rel=1e-12)
    for k, g in _dense(grads).items():
        np.testing.assert_allclose(g, dense[k], rtol=1e-12)


@pytest.mark.parametrize("tie", [False, True])
def test_sparse_embedding_gradient_is_the_dense_one(rng, tie):
    """The model's embedding gradient in sparse form holds exactly the dense one's non-zero rows
    (tied weights: the output layer reaches every row, so it stays dense)."""
    V, E = 30, 6
    cfg = M.ModelConfig(vocab_size=V, embed=E, hidden=E, tie_weights=tie, dropout=0.0)
    params = M.init_params(cfg, rng, np.float64)
    inputs = rng.integers(0, V // 2, size=(5, 3))  # rows V/2.. never occur
    targets = rng.integers(0, V, size=(5, 3))
    state0 = M.init_state(cfg, 3, np.float64)
    dense = M.loss_and_grads(params, cfg, inputs, targets, state0).grads["embed"]
    sparse = M.loss_and_grads(params, cfg, inputs, targets, state0, sparse_embedding=True)
    g = sparse.grads["embed"]
    if tie:
        assert not isinstance(g, RowSparse)
        assert np.array_equal(g, dense)
        return
    assert isinstance(g, RowSparse)
    assert np.array_equal(g.rows, np.unique(inputs))
    assert np.array_equal(g.dense(), dense)


@pytest.mark.parametrize("width", [6, 1000])  # 1000: rows straddle the chunk boundaries
def test_dense_adam_on_row_sparse_gradients_is_exactly_dense_adam(rng, width):
    """Non-lazy Adam expands a RowSparse gradient chunk by chunk: bit for bit the update of the
    dense gradient, absent rows moved by their momentum included, over several steps."""
    V = 2 * backend.CHUNK // width + 7  # more than one chunk
    params = {"embed": rng.normal(size=(V, width))}
    dense_params = {"embed": params["embed"].copy()}
    sparse_opt, dense_opt = Adam(params, 0.01), Adam(dense_params, 0.01)
    for _ in range(3):
        rows = np.sort(rng.choice(V, size=V // 3, replace=False))
        g = RowSparse(rows, rng.normal(size=(len(rows), width)), (V, width))
        sparse_opt.update(params, {"embed": g})
        dense_opt.update(dense_params, {"embed": g.dense()})
    assert np.array_equal(params["embed"], dense_params["embed"])
    assert np.array_equal(sparse_opt.m["embed"], dense_opt.m["embed"])


def test_lazy_adam_reaches_the_training_loop():
    """--sparse-embedding (lazy Adam) changes what train() learns; tied weights stay dense."""
    ids = np.random.default_rng(3).integers(0, 50, size=3000)
    cfg = M.ModelConfig(vocab_size=50, embed=8, hidden=8, dropout=0.0)

    def run(sparse):
        tc = TrainConfig(epochs=1, batch_size=4, seq_len=8, lazy_adam=sparse,
                         dtype="float64")  # fmt: skip
        return train(ids, cfg, tc).params

    assert not np.allclose(run(True)["embed"], run(False)["embed"])
    assert TrainConfig().lazy_adam_for(cfg) is False  # by default exactly dense Adam
    tied = M.ModelConfig(vocab_size=50, embed=8, hidden=8, tie_weights=True)
    assert TrainConfig(lazy_adam=True).lazy_adam_for(tied) is False


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adagrad"])
def test_training_loop_matches_a_plain_dense_loop(optimizer):
    """train() (row-sparse embedding gradient, workspace buffers) against a plain loop over
    loss_and_grads with dense gradients, clipping and the optimiser: the same parameters."""
    from rnngen.text.batching import iter_batches, make_streams

    ids = np.random.default_rng(4).integers(0, 40, size=2000)
    cfg = M.ModelConfig(vocab_size=40, embed=6, hidden=7, dropout=0.0)
    # SGD at its default lr (5 for this tanh RNN) moves this tiny model chaotically, so rounding
    # differences between the two loops grow to O(1) over the epoch: a tamer lr for the comparison
    lr = 0.2 if optimizer == "sgd" else None
    tc = TrainConfig(epochs=1, batch_size=4, seq_len=6, dtype="float64", val_frac=0.0, clip=0.5,
                     optimizer=optimizer, state_reset=0.0, lr=lr, unigram_bias=False)  # fmt: skip
    trained = train(ids, cfg, tc).state.params
    params = M.init_params(cfg, np.random.default_rng(tc.seed), np.float64)
    opt = make_optimizer(optimizer, params, tc.learning_rate(cfg.cell))
    state = M.init_state(cfg, tc.batch_size, np.float64)
    for x, y in iter_batches(make_streams(ids, tc.batch_size), tc.seq_len):
        r = M.loss_and_grads(params, cfg, x, y, state)
        clip_grad_norm(r.grads, tc.clip)
        opt.update(params, r.grads)
        state = r.state
    for k in params:
        np.testing.assert_allclose(trained[k], params[k], rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("cls", [SGD, Adagrad, Adam])
@pytest.mark.parametrize("max_norm", [0.3, 1e9])  # clipped, and within the limit
def test_clipping_folded_into_the_update(rng, cls, max_norm):
    """clip_and_update (the clipping factor applied inside the optimiser's pass) gives what
    clipping the gradients in memory and then updating gives: bit for bit for Adam, to rounding
    for SGD and Adagrad (which fold the factor into their own products)."""
    V, E = 2 * backend.CHUNK // 64 + 5, 64  # the dense pass covers more than one chunk
    params = {"embed": rng.normal(size=(V, E)), "w": rng.normal(size=(3, backend.CHUNK + 9))}
    folded = {k: v.copy() for k, v in params.items()}
    opt, opt_folded = cls(params, 0.05), cls(folded, 0.05)
    for _ in range(3):
        rows = np.sort(rng.choice(V, size=V // 4, replace=False))
        grads = {"embed": RowSparse(rows, rng.normal(size=(len(rows), E)), (V, E)),
                 "w": rng.normal(size=(3, backend.CHUNK + 9))}  # fmt: skip
        norm = clip_grad_norm(_copy(grads), max_norm)
        assert clip_and_update(opt_folded, folded, _copy(grads), max_norm) == norm
        clipped = _copy(grads)
        clip_grad_norm(clipped, max_norm)
        opt.update(params, clipped)
    for k in params:
        if cls is Adam:
            assert np.array_equal(params[k], folded[k]), k
        else:
            np.testing.assert_allclose(params[k], folded[k], rtol=1e-13, atol=1e-15, err_msg=k)
    assert clip_scale(10.0, 1.0) == pytest.approx(0.1) and clip_scale(0.5, 1.0) == 1.0
    assert clip_scale(10.0, 0.0) == 1.0  # max_norm 0 turns clipping off


def test_adam_refuses_a_parameter_it_could_not_update_in_place(rng):
    params = {"w": np.asfortranarray(rng.normal(size=(4, 5)))}  # a flat view of it would be a copy
    with pytest.raises(ValueError, match="contiguous"):
        Adam(params, 0.01).update(params, {"w": rng.normal(size=(4, 5))})
