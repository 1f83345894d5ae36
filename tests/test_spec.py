"""The loss table is written once (python/fastloss/_spec.py) and everything native is derived from it:
the compiled extension reports the table it was built from, and a table the C++ cannot honour fails
the build instead of computing another loss."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import fastloss
import numpy as np
import pytest
from fastloss import _backends, _registry, _spec

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "tools" / "gen_losses.py"
needs_source = pytest.mark.skipif(not (GENERATOR.is_file() and (ROOT / "csrc").is_dir()),
                                  reason="needs the source tree (tools/, csrc/)")
needs_compiler = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def test_the_extension_was_built_from_this_table():
    if "native" not in _backends.available():
        pytest.skip("fastloss._C is not built")
    assert _backends._C.loss_table_signature == _spec.table_signature()


def test_a_stale_extension_is_refused_at_import():
    class Stale:
        loss_table_signature = "0:cross_entropy:rowwise:ignore_index"

    with pytest.raises(ImportError, match="stale build"):
        _backends.cpu.check_table(Stale, "_C")


def test_registry_follows_the_spec_in_order():
    assert [s.name for s in fastloss.LOSSES] == [loss.name for loss in _spec.LOSSES]
    assert [s.cpp_id for s in fastloss.LOSSES] == list(range(len(_spec.LOSSES)))
    for spec, loss in zip(fastloss.LOSSES, _spec.LOSSES):
        assert [o.name for o in spec.options] == [o.name for o in loss.options]


@pytest.mark.parametrize("spec", fastloss.LOSSES, ids=lambda s: s.name)
def test_every_option_has_a_valid_non_default_example(spec):
    for o in spec.options:
        example = np.linspace(0.5, 1.5, 4) if o.spec.example == "per-class" else o.spec.example
        checked = o.check(o.name, example, 4)
        assert not (checked is None or (not isinstance(checked, np.ndarray) and checked == o.default)), o.name


@pytest.mark.parametrize("spec", fastloss.LOSSES, ids=lambda s: s.name)
def test_kernel_params_hold_exactly_the_loss_options(spec):
    opts = {o.name: o.check(o.name, o.default, 4) for o in spec.options}
    vector, params = spec.kernel_params(opts)
    assert vector is None
    assert tuple(params) == _spec.kernel_param_names(_spec.LOSSES[spec.cpp_id])


def test_an_option_name_cannot_change_its_kernel_type(monkeypatch):
    clash = _spec.Loss("clash", _spec.POINTWISE, "input", (_spec.Opt("delta", "i64", 1, "integer", "?"),),
                       "elements", "?")
    monkeypatch.setattr(_spec, "LOSSES", _spec.LOSSES + (clash,))
    with pytest.raises(ValueError, match="delta"):
        _spec.kernel_params()


def _compile_with_extra_loss(tmp_path: Path, extra: str) -> subprocess.CompletedProcess:
    """Generate the C++ table from _spec.py plus one more entry, then compile the CPU kernels."""
    spec_copy = tmp_path / "_spec.py"
    spec_copy.write_text((ROOT / "python" / "fastloss" / "_spec.py").read_text() + extra)
    gen = tmp_path / "generated"
    subprocess.run([sys.executable, str(GENERATOR), str(gen), str(spec_copy)], check=True)
    return subprocess.run(
        ["g++", "-std=c++17", "-fsyntax-only", "-fopenmp", "-Werror=switch", "-DFASTLOSS_ISA=scalar",
         "-DFL_ISA_SCALAR=1", f"-I{gen}", f"-I{ROOT / 'csrc'}", str(ROOT / "csrc" / "cpu" / "isa_kernels.cpp")],
        capture_output=True, text=True, check=False,
    )


@needs_source
@needs_compiler
def test_the_table_as_it_is_compiles(tmp_path):
    result = _compile_with_extra_loss(tmp_path, "")
    assert result.returncode == 0, result.stderr[-2000:]


@needs_source
@needs_compiler
def test_a_pointwise_loss_without_its_math_header_fails_the_build(tmp_path):
    # Round 1's failure: such a loss fell through a `default:` into smooth_l1 and returned L1 values.
    result = _compile_with_extra_loss(tmp_path, (
        '\nLOSSES = LOSSES + (Loss(name="quartic_loss", kind=POINTWISE, input_name="input", options=(),'
        ' mean_over="elements", formula="l = e**4"),)\n'))
    assert result.returncode != 0
    assert "fastloss/losses/quartic_loss.h" in result.stderr


@needs_source
@needs_compiler
def test_a_row_loss_its_row_kernel_does_not_handle_fails_the_build(tmp_path):
    result = _compile_with_extra_loss(tmp_path, (
        '\nLOSSES = LOSSES + (Loss(name="new_softmax_loss", kind=ROWWISE, row_kernel="softmax",'
        ' input_name="logits", options=(), mean_over="valid_rows", formula="?"),)\n'))
    assert result.returncode != 0
    assert "LOSS_new_softmax_loss" in result.stderr and "not handled in switch" in result.stderr


@needs_source
def test_the_generator_rejects_two_class_vectors(tmp_path):
    spec_copy = tmp_path / "_spec.py"
    spec_copy.write_text((ROOT / "python" / "fastloss" / "_spec.py").read_text() + (
        '\nLOSSES = LOSSES + (Loss(name="two_vectors", kind=ROWWISE, row_kernel="softmax", input_name="x",'
        ' options=(Opt("weight", "class_vector", None, "class_vector", "?"),'
        ' Opt("alpha", "class_vector", None, "class_vector", "?")), mean_over="valid_rows", formula="?"),)\n'))
    result = subprocess.run([sys.executable, str(GENERATOR), str(tmp_path / "g"), str(spec_copy)],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "more than one class_vector" in result.stderr


def test_registry_knows_every_validator_the_spec_names():
    for loss in _spec.LOSSES:
        for o in loss.options:
            assert o.type == "choice" or o.check in _registry.VALIDATORS, (loss.name, o.name)


@needs_source
@pytest.mark.parametrize(("extra", "message"), [
    (('kind=POINTWISE, input_name="x", options=(Opt("a", "broadcast_vector", None, "broadcast_vector", "?"),'
      ' Opt("b", "broadcast_vector", None, "broadcast_vector", "?"), Opt("c", "broadcast_vector", None,'
      ' "broadcast_vector", "?")), mean_over="elements", formula="?"'), "more than 2 broadcast_vector options"),
    (('kind=ROWWISE, row_kernel="softmax", input_name="x", options=(Opt("a", "broadcast_vector", None,'
      ' "broadcast_vector", "?"),), mean_over="valid_rows", formula="?"'), "broadcast_vector options are for point-wise"),
])
def test_the_generator_rejects_broadcast_vectors_it_cannot_pass(tmp_path, extra, message):
    spec_copy = tmp_path / "_spec.py"
    spec_copy.write_text((ROOT / "python" / "fastloss" / "_spec.py").read_text() + (
        f'\nLOSSES = LOSSES + (Loss(name="many_vectors", {extra}),)\n'))
    result = subprocess.run([sys.executable, str(GENERATOR), str(tmp_path / "g"), str(spec_copy)],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0 and message in result.stderr


def test_spec_facts_reach_the_registry():
    """difference / extra_reductions / domain_unless are read from the spec, not from loss names."""
    by_name = {loss.name: loss for loss in _spec.LOSSES}
    for spec in _registry.LOSSES:
        loss = by_name[spec.name]
        assert spec.difference == loss.difference and spec.domain_unless == loss.domain_unless
        assert spec.reductions == _registry.REDUCTIONS + loss.extra_reductions
        assert spec.broadcast_names == tuple(o.name for o in _spec.broadcast_options(loss))


@needs_source
@needs_compiler
def test_a_row_kernel_reads_only_the_active_loss_options(tmp_path):
    """Unused LossParams fields are 0 (or whatever a caller left there); the row kernels' switches
    ("softcap on", "label smoothing on", ignore_index) come from the active loss's own generated view,
    so another loss's field can never route a loss through cross_entropy's math."""
    gen = tmp_path / "generated"
    subprocess.run([sys.executable, str(GENERATOR), str(gen)], check=True)
    src = tmp_path / "probe.cpp"
    src.write_text("""#include <cstdio>
#include "row_context.h"
using namespace fastloss;
int main() {
  LossParams p{};
  p.softcap = 2.0;          // cross_entropy's options, set while another loss runs
  p.label_smoothing = 0.3;
  p.z_loss = 0.5;
  p.ignore_index = 0;
  p.gamma = 0.5;
  FlRowwiseArgs a{};
  a.classes = 4;
  a.params = p;
  a.loss_id = LOSS_softmax_focal_loss;
  const RowContext<double> focal(a, nullptr, 4.0);
  a.loss_id = LOSS_softmax_kl_div;
  const RowContext<double> distill(a, nullptr, 4.0);
  a.loss_id = LOSS_cross_entropy;
  const RowContext<double> ce(a, nullptr, 4.0);
  std::printf("%g %g %g %d %g | %d %d | %g %g %d\\n", focal.cap, double(focal.ce.eps), double(focal.ce.z_loss),
              int(int64_t(0) == focal.ignore_index), focal.gamma, int(int64_t(0) == distill.ignore_index),
              int(int64_t(-100) == distill.ignore_index), ce.cap, double(ce.ce.eps), int(int64_t(0) == ce.ignore_index));
}
""")
    exe = tmp_path / "probe"
    subprocess.run(["g++", "-std=c++17", "-DFASTLOSS_ISA=scalar", f"-I{gen}", f"-I{ROOT / 'csrc' / 'cpu'}",
                    f"-I{ROOT / 'csrc'}", str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    # focal: no softcap, no smoothing, no z-loss, its own ignore_index (0) and gamma
    assert out[:5] == ["0", "0", "0", "1", "0.5"]
    # softmax_kl_div has no ignore_index: no class index is ignored, not even an unset 0 or -100
    assert out[6:8] == ["0", "0"]
    # cross_entropy reads its own
    assert out[9:] == ["2", "0.3", "1"]


@needs_source
@needs_compiler
def test_a_loss_header_built_from_the_shared_params_fails_the_build(tmp_path):
    """A loss struct takes its generated view (only its own options), never the shared LossParams
    whose other fields belong to other losses (or are unset zeroes)."""
    gen = tmp_path / "generated"
    subprocess.run([sys.executable, str(GENERATOR), str(gen)], check=True)
    csrc = tmp_path / "csrc"
    shutil.copytree(ROOT / "csrc" / "fastloss", csrc / "fastloss")
    header = csrc / "fastloss" / "losses" / "huber_loss.h"
    own = "explicit FL_HD huber_loss(const huber_loss_params& p)"
    assert own in header.read_text()  # the line this test alters; update both together
    header.write_text(header.read_text().replace(own, "explicit FL_HD huber_loss(const LossParams& p)"))
    source = tmp_path / "tu.cpp"
    source.write_text('#include "fastloss_generated/pointwise_losses.h"\n')
    result = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", f"-I{gen}", f"-I{csrc}", str(source)],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert ("csrc/fastloss/losses/huber_loss.h: construct huber_loss from its generated huber_loss_params "
            "(its own options), not from LossParams") in result.stderr, result.stderr[-2000:]
