"""The committed golden fixture: losses, gradients and training losses must not drift."""

import numpy as np
from make_golden import FIXTURE, compute


def test_golden_fixture_matches():
    with np.load(FIXTURE, allow_pickle=False) as f:
        stored = {k: f[k] for k in f.files}
    data = {k: stored[k] for k in ("ids", "targets", "state0", "corpus")}
    fresh = compute(data)
    assert sorted(fresh) == sorted(set(stored) - set(data))  # nothing missing, nothing extra
    assert len(fresh) > 30
    for name, value in fresh.items():
        np.testing.assert_allclose(value, stored[name], rtol=1e-9, atol=1e-12, err_msg=name)
