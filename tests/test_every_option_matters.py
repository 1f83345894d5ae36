"""Every option of every loss changes its result: generated from python/fastloss/_spec.py.

For each loss and each option with an ``example``, the option moved from its default to its example
must change the loss or the gradient on that option's check case, on NumPy and on every native ISA
(float32 and float64 math). A header (or row kernel) that never reads an option would otherwise
compute the default silently, as ``pseudo_huber_loss(x, y, gain=2)`` once did; the failure names
the loss and the option. The last test shows the check catching exactly that, on a copy of
``huber_loss.h`` altered to ignore ``delta`` (compiled here, like tests/test_spec.py's tables).
(The CUDA emulator's variant of this check lives with the CUDA tests.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import fastloss
import numpy as np
import pytest
from fastloss import _spec
from fastloss._check import implementations, running_on

ROOT = Path(__file__).resolve().parent.parent
SPECS = {spec.name: spec for spec in fastloss.LOSSES}
OPTIONS = [pytest.param(loss, opt, id=f"{loss.name}.{opt.name}")
           for loss in _spec.LOSSES for opt in loss.options if opt.example is not None]
ROWS, CLASSES, ELEMENTS = 7, 9, (5, 9)


def check_case(loss: _spec.Loss, seed: int = 0):
    """(x, target) of an option's check case: the loss's natural inputs, class-index targets 0..rows-1
    (so an ignore_index example, a small class index, names a row that is there)."""
    rng = np.random.default_rng(seed)
    spec = SPECS[loss.name]
    shape = (ROWS, CLASSES) if spec.rowwise else ELEMENTS
    x = rng.standard_normal(shape) * 2
    if spec.logit_targets:
        return x, rng.standard_normal(shape) * 2
    if spec.rowwise:
        return x, np.arange(ROWS) % CLASSES
    if spec.target_values is not None:
        return x, rng.choice(np.array(spec.target_values, dtype=np.float64), shape)
    if spec.target_range is not None:
        return x, rng.random(shape)
    return x, rng.standard_normal(shape)


def example_value(opt: _spec.Opt, classes: int):
    return np.linspace(0.5, 2.0, classes) if opt.example == "per-class" else opt.example


def differs(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return not np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)


def unread_options(loss: _spec.Loss, evaluate, options=None) -> list[str]:
    """What to fix for every option of ``loss`` whose example gives the default's result.
    ``evaluate(x, target, **opts) -> (loss per row/element, gradient)``."""
    x, target = check_case(loss)
    base = evaluate(x, target)
    problems = []
    for opt in options or [o for o in loss.options if o.example is not None]:
        changed = evaluate(x, target, **{opt.name: example_value(opt, x.shape[-1])})
        if not any(differs(c, b) for c, b in zip(changed, base)):
            problems.append(
                f"{loss.name}: option {opt.name}={opt.example!r} gives the same loss and gradient as its default "
                f"{opt.default!r}, so the kernel never reads it: read it from the generated {loss.name}_params "
                f"(csrc/fastloss/losses/{loss.name}.h; a row-wise loss: RowContext's o.{loss.name} in its family's "
                f"switch case), or give the option an example that changes the result on this check case")
    return problems


def _public(loss: _spec.Loss, dtype: str):
    fn = getattr(fastloss, f"{loss.name}_with_grad")

    def evaluate(x, target, **opts):
        xs = x.astype(dtype)
        t = target.astype(dtype) if target.dtype.kind == "f" else target
        return fn(xs, t, reduction="none", **opts)

    return evaluate


@pytest.mark.parametrize(("loss", "opt"), OPTIONS)
def test_every_option_changes_the_result_everywhere(loss, opt):
    failures = []
    for backend, isa in implementations():
        for dtype in ("float64", "float32"):
            with running_on(backend, isa):
                found = unread_options(loss, _public(loss, dtype), [opt])
            failures += [f"[{backend}{'-' + isa if isa else ''}, {dtype}] {m}" for m in found]
    assert not failures, "\n".join(failures)


def test_every_option_with_a_check_has_an_example():
    missing = [f"{loss.name}.{o.name}" for loss in _spec.LOSSES for o in loss.options if o.example is None]
    assert not missing, f"give these options an example (a non-default value) in _spec.py: {missing}"


# ---- the check catches a header that ignores its option --------------------------------------

def _driver_source(loss: _spec.Loss) -> str:
    """A program evaluating csrc/fastloss/losses/<loss>.h in double on stdin's "key value" options
    and "x y" pairs: the loss struct as the kernels build it, from its generated view."""
    sets = "".join(f'      if (key == "{n}") p.{n} = decltype(p.{n})(value);\n'
                   for n in _spec.kernel_param_names(loss))
    return f"""#include <iostream>
#include <string>
#include "fastloss/losses/{loss.name}.h"
int main() {{
  fastloss::{loss.name}_params p;
  int count;
  std::cin >> count;
  for (int i = 0; i < count; ++i) {{
    std::string key;
    double value;
    std::cin >> key >> value;
{sets}  }}
  const fastloss::{loss.name}<double> loss(p);
  double x, y;
  std::cout.precision(17);
  while (std::cin >> x >> y) {{
    const fastloss::LossGrad<double> r = loss(x, y);
    std::cout << r.loss << " " << r.grad << "\\n";
  }}
}}
"""


def _compiled_header_evaluator(loss: _spec.Loss, csrc: Path, tmp_path: Path):
    gen = tmp_path / "generated"
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_losses.py"), str(gen)], check=True)
    src, exe = tmp_path / "driver.cpp", tmp_path / "driver"
    src.write_text(_driver_source(loss))
    subprocess.run(["g++", "-std=c++17", "-O0", f"-I{gen}", f"-I{csrc}", str(src), "-o", str(exe)], check=True)

    def evaluate(x, target, **opts):
        lines = [str(len(opts))] + [f"{k} {float(v)}" for k, v in opts.items()]
        lines += [f"{a!r} {b!r}" for a, b in zip(x.ravel().tolist(), target.ravel().tolist())]
        out = subprocess.run([str(exe)], input="\n".join(lines), capture_output=True, text=True, check=True).stdout
        values = np.array(out.split(), dtype=np.float64).reshape(-1, 2)
        return values[:, 0], values[:, 1]

    return evaluate


@pytest.mark.skipif(shutil.which("g++") is None or not (ROOT / "csrc").is_dir(), reason="needs g++ and csrc/")
def test_a_header_that_never_reads_its_option_fails_this_check(tmp_path):
    huber = next(loss for loss in _spec.LOSSES if loss.name == "huber_loss")
    csrc = tmp_path / "csrc"
    shutil.copytree(ROOT / "csrc" / "fastloss", csrc / "fastloss")
    header = csrc / "fastloss" / "losses" / "huber_loss.h"
    text = header.read_text()
    reads = "delta(S(p.delta)), half_delta(S(0.5 * p.delta))"
    assert reads in text  # the line this test alters; update both together
    header.write_text(text.replace(reads, "delta(S(1.0)), half_delta(S(0.5))"))

    assert unread_options(huber, _compiled_header_evaluator(huber, ROOT / "csrc", tmp_path / "real")) == []
    found = unread_options(huber, _compiled_header_evaluator(huber, csrc, tmp_path / "altered"))
    assert len(found) == 1 and found[0].startswith("huber_loss: option delta=0.5 gives the same"), found
    assert "huber_loss_params" in found[0]
