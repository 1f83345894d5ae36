"""fastloss.torch's tiled contrastive losses against the libraries users run and the naive formula.

References: open_clip's ``ClipLoss``/``SigLipLoss``, lightly's ``NTXentLoss``, sentence-transformers'
``MultipleNegativesRankingLoss`` (its loss on given embeddings), and float64 autograd of the full
(N, N) formula. Sizes: N = 13 rows with strips of 1, 5 (not dividing N) and 64 (one strip larger than
N) rows, D = 6; M = 17 keys for the extra-negatives case. The distributed tests are in
test_contrastive_distributed.py, the large sizes in benchmarks/contrastive.py.
"""

from __future__ import annotations

import math

import fastloss.torch as flt
import pytest
import torch
import torch.nn.functional as F

N, D, M = 13, 6, 17
CHUNKS = [None, 1, 5, 64]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny matrices: one thread avoids OpenMP spinning on the loaded CI cores; results are thread-independent."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _features(*shapes, dtype=torch.float64, seed=0, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(*s, generator=g, dtype=torch.float64) * spread).to(dtype).requires_grad_() for s in shapes]


def _naive_info_nce(q, k, temperature, symmetric, reduction):
    z = q @ k.T / temperature
    t = torch.arange(q.shape[0])
    if not symmetric:
        return F.cross_entropy(z, t, reduction=reduction)
    return (F.cross_entropy(z, t, reduction=reduction) + F.cross_entropy(z.T, t, reduction=reduction)) / 2


def _grads(loss, inputs, grad_output=None):
    go = torch.ones_like(loss) if grad_output is None else grad_output.to(loss.dtype)
    return torch.autograd.grad(loss, inputs, go, retain_graph=True)  # got and want may share a graph


def _assert_same(got, want, grads_got, grads_want, rtol=1e-10, atol=1e-12):
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
    for a, b in zip(grads_got, grads_want):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_equals_naive_formula(symmetric, reduction, chunk):
    q, k = _features((N, D), (N if symmetric else M, D))
    got = flt.info_nce(q, k, temperature=0.3, symmetric=symmetric, reduction=reduction, chunk_size=chunk)
    want = _naive_info_nce(q, k, 0.3, symmetric, reduction)
    go = torch.linspace(-1, 2, N, dtype=torch.float64) if reduction == "none" else torch.tensor(1.7)
    assert got.shape == want.shape and got.dtype == torch.float64
    _assert_same(got, want, _grads(got, (q, k), go), _grads(want, (q, k), go))


@pytest.mark.parametrize("chunk", [None, 4])
def test_clip_loss_equals_open_clip(chunk):
    from open_clip.loss import ClipLoss

    img, txt = _features((N, D), (N, D), seed=1)
    img_n, txt_n = F.normalize(img, dim=1), F.normalize(txt, dim=1)
    scale = torch.tensor(14.3, dtype=torch.float64, requires_grad=True)
    if chunk is None:
        got = flt.clip_loss(img_n, txt_n, scale)
    else:  # the same loss through info_nce's chunk_size (clip_loss chooses its own strips)
        got = flt.info_nce(img_n * scale, txt_n, temperature=1.0, symmetric=True, chunk_size=chunk)
    want = ClipLoss()(img_n, txt_n, scale)
    _assert_same(got, want, _grads(got, (img, txt, scale)), _grads(want, (img, txt, scale)))


def test_clip_loss_takes_a_number_as_logit_scale():
    from open_clip.loss import ClipLoss

    img, txt = _features((N, D), (N, D), seed=2)
    got = flt.clip_loss(img, txt, 3.5)
    want = ClipLoss()(img, txt, 3.5)
    _assert_same(got, want, _grads(got, (img, txt)), _grads(want, (img, txt)))


@pytest.mark.parametrize("bias", [-10.0, 0.0, 2.5])
def test_siglip_loss_equals_open_clip(bias):
    from open_clip.loss import SigLipLoss

    img, txt = _features((N, D), (N, D), seed=3)
    scale = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(bias, dtype=torch.float64, requires_grad=True)
    got = flt.siglip_loss(img, txt, scale, b)
    want = SigLipLoss()(img, txt, scale, b)
    inputs = (img, txt, scale, b)
    _assert_same(got, want, _grads(got, inputs), _grads(want, inputs))


@pytest.mark.parametrize("temperature", [0.5, 0.07])
def test_nt_xent_equals_lightly(temperature):
    from lightly.loss import NTXentLoss

    z1, z2 = _features((N, D), (N, D), seed=4, spread=3.0)  # not normalised: the loss normalises
    got = flt.nt_xent(z1, z2, temperature=temperature)
    want = NTXentLoss(temperature=temperature)(z1, z2)
    _assert_same(got, want, _grads(got, (z1, z2)), _grads(want, (z1, z2)))


@pytest.mark.parametrize("directions", [("query_to_doc",), ("query_to_doc", "doc_to_query")])
def test_info_nce_equals_sentence_transformers_mnrl(directions):
    """MultipleNegativesRankingLoss on given embeddings: cos_sim * scale (20), hard negatives as
    extra keys; its symmetric variant averages the two directions' log-partition functions."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    symmetric = len(directions) == 2
    anchor, positive, negative = _features((N, D), (N, D), (N, D), seed=5)
    mode = "per_direction" if symmetric else "joint"
    mnrl = MultipleNegativesRankingLoss(None, scale=20.0, directions=directions, partition_mode=mode)
    embeddings = [anchor, positive] if symmetric else [anchor, positive, negative]
    want = mnrl.compute_loss_from_embeddings(embeddings, None)
    keys = positive if symmetric else torch.cat([positive, negative])
    got = flt.info_nce(F.normalize(anchor, dim=1), F.normalize(keys, dim=1), temperature=1 / 20, symmetric=symmetric)
    inputs = (anchor, positive) if symmetric else (anchor, positive, negative)
    _assert_same(got, want, _grads(got, inputs), _grads(want, inputs))


def test_gradcheck():
    q, k = _features((5, 3), (7, 3), seed=6)
    s, b = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (2.0, -1.0))
    cases = {
        "info_nce none": (lambda q, k: flt.info_nce(q, k, temperature=0.5, reduction="none", chunk_size=2), (q, k)),
        "info_nce symmetric none": (
            lambda q, k: flt.info_nce(q, k[:5], temperature=0.5, symmetric=True, reduction="none", chunk_size=2),
            (q, k),
        ),
        "clip": (lambda q, k, s: flt.clip_loss(q, k[:5], s), (q, k, s)),
        "siglip": (lambda q, k, s, b: flt.siglip_loss(q, k[:5], s, b), (q, k, s, b)),
        "nt_xent": (lambda q, k: flt.nt_xent(q, k[:5], temperature=0.4), (q, k)),
    }
    for name, (fn, inputs) in cases.items():
        assert torch.autograd.gradcheck(fn, inputs), name


def test_ties_and_duplicates():
    """All embeddings equal: every logit ties, the loss is log(#candidates), the gradient 0 (q, k)."""
    q = torch.ones(N, D, dtype=torch.float64, requires_grad=True)
    k = torch.ones(N, D, dtype=torch.float64, requires_grad=True)
    loss = flt.info_nce(q, k, symmetric=True, chunk_size=5)
    assert math.isclose(loss.item(), math.log(N), rel_tol=1e-12)
    for g in _grads(loss, (q, k)):
        assert float(g.abs().max()) < 1e-12
    nt = flt.nt_xent(q, k)
    assert math.isclose(nt.item(), math.log(2 * N - 1), rel_tol=1e-12)
    # duplicated rows among distinct ones: the naive formula's values and gradients
    q2, k2 = _features((N, D), (N, D), seed=7)
    dq, dk = (torch.cat([x[:5], x[:5], x[10:]]).detach().requires_grad_() for x in (q2, k2))
    got = flt.info_nce(dq, dk, temperature=0.2, symmetric=True, chunk_size=4)
    want = _naive_info_nce(dq, dk, 0.2, True, "mean")
    _assert_same(got, want, _grads(got, (dq, dk)), _grads(want, (dq, dk)))


def test_one_pair():
    q, k = _features((1, D), (1, D), seed=8)
    for loss in (flt.info_nce(q, k, symmetric=True), flt.clip_loss(q, k, 5.0), flt.nt_xent(q, k)):
        assert loss.item() == 0.0  # the positive is the only candidate
        for g in _grads(loss, (q, k)):
            assert float(g.abs().max()) < 1e-12  # 0 up to the round-off of exp(log(1))
    s, b = torch.tensor(3.0, dtype=torch.float64), torch.tensor(-1.0, dtype=torch.float64)
    want = F.softplus(-(s * (q * k).sum() + b))
    torch.testing.assert_close(flt.siglip_loss(q, k, s, b), want, rtol=1e-12, atol=0)


def test_large_logits_stay_finite_and_exact():
    """Non-normalised features with logits in the thousands: log-space all the way."""
    q, k = _features((N, D), (N, D), seed=9, spread=30.0)
    got = flt.info_nce(q, k, temperature=0.05, symmetric=True, chunk_size=5)
    want = _naive_info_nce(q, k, 0.05, True, "mean")
    assert want.item() > 1000
    _assert_same(got, want, _grads(got, (q, k)), _grads(want, (q, k)), rtol=1e-9, atol=1e-9)
    s, b = torch.tensor(1.0, dtype=torch.float64), torch.tensor(-5.0, dtype=torch.float64)
    from open_clip.loss import SigLipLoss

    got = flt.siglip_loss(q, k, s, b)
    want = SigLipLoss()(q, k, s, b)
    _assert_same(got, want, _grads(got, (q, k)), _grads(want, (q, k)), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_inputs(dtype):
    """fp32 math inside; the loss in fp32 (fp64 for fp64), the gradients in the input dtype, against
    float64 on the same (rounded) inputs."""
    q, k = _features((N, D), (N, D), dtype=dtype, seed=10)
    s = torch.tensor(5.0, requires_grad=True)
    q64, k64 = (x.detach().double().requires_grad_() for x in (q, k))
    s64 = s.detach().double().requires_grad_()
    tol = {"rtol": 2e-2, "atol": 2e-3} if dtype != torch.float32 else {"rtol": 1e-5, "atol": 1e-6}
    for fn in (
        lambda a, b, s: flt.clip_loss(a, b, s),
        lambda a, b, s: flt.siglip_loss(a, b, s, -2.0),
        lambda a, b, s: flt.nt_xent(a, b),
    ):
        got, want = fn(q, k, s), fn(q64, k64, s64)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want.float(), **tol)
        for a, b in zip(_grads(got, (q, k)), _grads(want, (q64, k64))):
            assert a.dtype == dtype
            torch.testing.assert_close(a.double(), b, **tol)


def test_no_grad_and_partial_grads():
    q, k = _features((N, D), (N, D), seed=11)
    with torch.no_grad():
        got = flt.info_nce(q, k, symmetric=True, chunk_size=5)
    torch.testing.assert_close(got, _naive_info_nce(q, k, 0.07, True, "mean").detach(), rtol=1e-12, atol=0)
    kd = k.detach()
    got = flt.info_nce(q, kd, symmetric=True)
    (gq,) = _grads(got, (q,))
    (want,) = _grads(_naive_info_nce(q, kd, 0.07, True, "mean"), (q,))
    torch.testing.assert_close(gq, want, rtol=1e-10, atol=1e-12)


def test_torch_compile_fullgraph():
    q, k = _features((N, D), (N, D), seed=12)
    s = torch.tensor(4.0, dtype=torch.float64, requires_grad=True)

    def step(q, k, s):
        return flt.clip_loss(q, k, s) + flt.info_nce(q, k, reduction="none").sum() + flt.siglip_loss(q, k, s, -1.0)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    got, want = compiled(q, k, s), step(q, k, s)
    _assert_same(got, want, _grads(got, (q, k, s)), _grads(want, (q, k, s)))


def test_strip_memory_is_o_of_the_strip():
    """No allocation of the (N, N) matrix: with 8-row strips of a 512 x 512 problem, the largest single
    allocation is a strip or a gradient (16 KiB), far below the matrix (1 MiB); the naive formula's
    largest is the matrix itself (the check can fail)."""
    n = 512

    def largest_allocation(fn):
        q, k = _features((n, 8), (n, 8), dtype=torch.float32, seed=13)
        with torch.profiler.profile(profile_memory=True) as prof:
            fn(q, k).backward()
        return max(e.self_cpu_memory_usage for e in prof.events())

    assert largest_allocation(lambda q, k: _naive_info_nce(q, k, 0.07, True, "mean")) >= n * n * 4
    assert 0 < largest_allocation(lambda q, k: flt.info_nce(q, k, symmetric=True, chunk_size=8)) <= n * 8 * 4


def test_double_backward_refused():
    q, k = _features((N, D), (N, D), seed=14)
    loss = flt.info_nce(q, k)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(loss, q, create_graph=True)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda q, k: flt.info_nce(q, k[:3]), ValueError, "key needs at least as many rows"),
        (lambda q, k: flt.info_nce(q, k[:, :2]), ValueError, "same feature size"),
        (lambda q, k: flt.info_nce(q, k, symmetric=True), ValueError, "same batch size"),
        (lambda q, k: flt.info_nce(q, k, reduction="batchmean"), ValueError, "reduction must be one of"),
        (lambda q, k: flt.info_nce(q, k, temperature=0.0), ValueError, "temperature must be a positive"),
        (lambda q, k: flt.info_nce(q, k, chunk_size=0), ValueError, "chunk_size must be a positive"),
        (lambda q, k: flt.info_nce(q.long(), k), TypeError, "query must be a floating-point"),
        (lambda q, k: flt.info_nce(q, k.float()), TypeError, "same dtype"),
        (lambda q, k: flt.info_nce(q[0], k), ValueError, "query must be 2-D"),
        (lambda q, k: flt.clip_loss(q, k[:N], torch.ones(2)), ValueError, "logit_scale must be"),
        (lambda q, k: flt.clip_loss(q, k[:N], "1"), TypeError, "logit_scale must be a tensor or a number"),
        (lambda q, k: flt.siglip_loss(q, k[:N], 1.0, None), TypeError, "logit_bias must be"),
        (lambda q, k: flt.nt_xent(q, k[:N], temperature=0.0), ValueError, "temperature must be"),
        (lambda q, k: flt.info_nce(q, k, process_group=object()), ValueError, "not initialized"),
    ],
)
def test_bad_input(call, error, pattern):
    q, k = _features((N, D), (M, D), seed=15)
    with pytest.raises(error, match=pattern):
        call(q.detach(), k.detach())


def test_empty_batch():
    """As PyTorch's cross-entropy of no rows: "sum" is 0, "mean" is nan; the gradients are empty."""
    q, k = (torch.zeros(0, D, requires_grad=True) for _ in range(2))
    assert flt.info_nce(q, k, reduction="sum", symmetric=True).item() == 0.0
    assert flt.info_nce(q, k, reduction="none").shape == (0,)
    for loss in (flt.info_nce(q, k), flt.clip_loss(q, k, 2.0), flt.siglip_loss(q, k, 1.0, 0.0), flt.nt_xent(q, k)):
        assert math.isnan(loss.item())
        assert all(g.shape == (0, D) for g in _grads(loss, (q, k)))
