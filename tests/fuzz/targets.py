"""The public entry points the fuzzer calls, and the stable choice of one per seed.

Every entry point has a name ("cross_entropy_grad_hess", "torch.kl_div", "jax.mse_loss",
"linear_cross_entropy", ...) and a weight (its share of the cases: the adapters are slower per call).
A seed's entry point is chosen by weighted rendezvous hashing: each name gets the score
``-log(u) / weight`` with ``u`` a hash of (seed, name), and the smallest score wins. Adding an entry
point (a new loss, a new form) only takes over the seeds it wins; every other seed keeps its entry
point, and since a case's random stream is seeded from (seed, name) too (``case_rng``), it keeps its
very case: the mapping never depends on how many losses exist (issue 19).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import fastloss
import numpy as np

FORMS = ("", "_grad", "_with_grad", "_grad_hess")

# fastloss.torch drop-ins whose PyTorch counterpart (torch.nn.functional.<name>) is the reference
TORCH_COUNTERPARTS = ("cross_entropy", "huber_loss", "smooth_l1_loss", "mse_loss", "l1_loss",
                      "binary_cross_entropy_with_logits", "kl_div", "multi_margin_loss", "margin_ranking_loss")


@dataclass(frozen=True)
class EntryPoint:
    name: str  # as printed in findings
    kind: str  # "core" | "lm_head" | "torch" | "torch_lm_head" | "jax"
    loss: str | None  # the fastloss loss (core, jax) or torch function name
    form: str  # core: one of FORMS; lm_head: "" or "_with_grad"
    weight: float


@functools.cache
def entry_points() -> tuple[EntryPoint, ...]:
    eps = []
    for spec in fastloss.LOSSES:
        for form in FORMS:
            if hasattr(fastloss, spec.name + form):
                eps.append(EntryPoint(spec.name + form, "core", spec.name, form, 1.0))
    for form in ("", "_with_grad"):
        eps.append(EntryPoint("linear_cross_entropy" + form, "lm_head", None, form, 1.0))
    # the adapters cost 10-100x a core call (autograd, jax tracing): fewer cases each
    for name in TORCH_COUNTERPARTS:
        eps.append(EntryPoint("torch." + name, "torch", name, "", 0.08))
    eps.append(EntryPoint("torch.linear_cross_entropy", "torch_lm_head", None, "", 0.08))
    for spec in fastloss.LOSSES:
        eps.append(EntryPoint("jax." + spec.name, "jax", spec.name, "", 0.01))
    return tuple(eps)


def _unit(seed: int, name: str) -> float:
    """A uniform number in (0, 1) from (seed, name), the same on every platform and Python run."""
    h = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return (int.from_bytes(h, "little") + 0.5) / 2.0**64


def choose(seed: int) -> EntryPoint:
    return min(entry_points(), key=lambda ep: -math.log(_unit(seed, ep.name)) / ep.weight)


def case_rng(seed: int, name: str) -> np.random.Generator:
    """The case's random stream: a function of the seed and the entry point's name only."""
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng([seed, key])
