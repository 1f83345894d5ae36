"""The CUDA emulator (csrc/cuda/emu) is strict: it refuses what a GPU leaves undefined, and the
kernel bugs a GPU would show make tests fail under it.

A small host program (tests/cuda_emulator/driver.cpp) runs cross_entropy through every row plan
against its own float64 reference. Each mutation check applies one classic CUDA mistake to a copy
of the real kernel source, builds the driver over the copy and asserts that it fails; the driver's
deliberately wrong kernels must each be refused with a message that names the mistake. Needs g++
and a source checkout (the builds are one small translation unit each, a few seconds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CUDA = ROOT / "csrc" / "cuda"
EMU = CUDA / "emu"
DRIVER = Path(__file__).resolve().parent / "cuda_emulator" / "driver.cpp"
CXX = os.environ.get("CXX", "g++")

pytestmark = pytest.mark.skipif(
    shutil.which(CXX) is None or not (CUDA / "rowwise.cuh").is_file(),
    reason=f"needs {CXX} and a source checkout (csrc/cuda)")

FLAGS = ["-std=c++17", "-O1", "-DFASTLOSS_CUDA_EMULATOR=1", "-DFASTLOSS_ISA=cuda_emulated", "-ffp-contract=off",
         "-Wno-unknown-pragmas"]


@pytest.fixture(scope="module")
def toolchain(tmp_path_factory):
    """(work dir, generated-table dir, the emulator's object files), built once for the module."""
    work = tmp_path_factory.mktemp("cuda_emulator")
    gen = work / "generated"
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_losses.py"), str(gen)], check=True)
    objects = []
    for src in ("scheduler.cpp", "fiber.cpp", "runtime_api.cpp"):
        obj = work / (src + ".o")
        subprocess.run([CXX, *FLAGS, f"-I{EMU / 'include'}", "-c", str(EMU / src), "-o", str(obj)], check=True)
        objects.append(str(obj))
    return work, gen, objects


def build_driver(toolchain, name: str, mutation: tuple[str, str, str] | None = None) -> Path:
    """The driver over csrc/cuda, or over a copy with `old` replaced by `new` in `file` (once)."""
    work, gen, objects = toolchain
    src = CUDA
    if mutation is not None:
        file, old, new = mutation
        src = work / f"src_{name}"
        shutil.copytree(CUDA, src, ignore=shutil.ignore_patterns("emu"))
        text = (src / file).read_text()
        assert text.count(old) == 1, f"the mutation's text is not (once) in csrc/cuda/{file}: update the test"
        (src / file).write_text(text.replace(old, new))
    exe = work / f"driver_{name}"
    # The copy first: its headers are found before anything else named like them.
    subprocess.run([CXX, *FLAGS, f"-I{src}", f"-I{EMU / 'include'}", f"-I{ROOT / 'csrc'}", f"-I{gen}", str(DRIVER),
                    *objects, "-o", str(exe)], check=True)
    return exe


def run(exe: Path, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), mode], capture_output=True, text=True, timeout=300, check=False)


def test_the_real_kernels_pass_every_row_plan(toolchain):
    result = run(build_driver(toolchain, "real"), "rows")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(thread-block cluster plan)" in result.stdout  # the Hopper plan ran too


MISTAKES = {
    # A thread leaves while the others wait at a barrier.
    "exit_while_others_wait": "thread(s) of its block wait at __syncthreads() at driver.cpp",
    # Two different barriers for two halves of the block.
    "divergent_barriers": "while other threads of its block wait at __syncthreads() at",
    # A shuffle whose mask omits lanes that execute it.
    "mask_omits_a_participating_lane": "which omits the calling lane",
    "reads_a_lane_outside_the_mask": "which is not in the mask 0x0000ffff",
    "full_mask_with_an_exited_lane": "exited while lanes of its warp wait for it at __shfl_down_sync",
}


@pytest.fixture(scope="module")
def driver(toolchain):
    return build_driver(toolchain, "real")


@pytest.mark.parametrize("mode", sorted(MISTAKES))
def test_the_emulator_refuses_undefined_behaviour(driver, mode):
    result = run(driver, mode)
    assert result.returncode == 2, result.stdout + result.stderr
    assert MISTAKES[mode] in result.stdout, result.stdout


def test_shared_memory_starts_as_nan(driver):
    result = run(driver, "uninitialised_shared_read")
    assert result.returncode == 3, result.stdout  # exactly the 32 unwritten values read as NaN


MUTATIONS = {
    "a1_block_reduction_without_its_first_syncthreads": (
        "group_reduce.cuh",
        "    __syncthreads();  // scratch may still be read by a previous reduction\n",
        "\n"),
    "a2_block_reduction_without_its_second_syncthreads": (
        "group_reduce.cuh",
        "    if (threadIdx.x % 32 == 0) scratch[warp] = v;\n    __syncthreads();\n    S r = scratch[0];",
        "    if (threadIdx.x % 32 == 0) scratch[warp] = v;\n    S r = scratch[0];"),
    "b_row_loop_one_past_the_end": (
        "row_job.cuh",
        "    for (long long c = lane; c < len; c += lanes) {\n      const S zm = k.z(xv[c], th) - ms;",
        "    for (long long c = lane; c <= len; c += lanes) {\n      const S zm = k.z(xv[c], th) - ms;"),
    "b_grad_loop_stops_one_short": (
        "row_job.cuh",
        "  for (long long c = lane; c < len; c += lanes) {\n    const S g = fill",
        "  for (long long c = lane; c + 1 < len; c += lanes) {\n    const S g = fill"),
    "c1_shuffle_offset": (
        "group_reduce.cuh",
        "for (int k = G / 2; k > 0; k /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, k, G));",
        "for (int k = G / 4; k > 0; k /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, k, G));"),
    "c2_shuffle_width": (
        "group_reduce.cuh",
        "for (int k = G / 2; k > 0; k /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, k, G));",
        "for (int k = G / 2; k > 0; k /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, k, G / 2));"),
    "d_row_tile_one_class_short": (
        "rowwise.cuh",
        "copy_to_shared(xs, static_cast<const T*>(a.x) + row * C, C, vec, lane, lanes);",
        "copy_to_shared(xs, static_cast<const T*>(a.x) + row * C, C - 1, vec, lane, lanes);"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_mutated_kernel_fails(toolchain, name):
    result = run(build_driver(toolchain, name, MUTATIONS[name]), "rows")
    assert result.returncode in (1, 2), f"the mutation {name} went unnoticed:\n{result.stdout}{result.stderr}"


# ---- a row-wise loss the CUDA kernels do not handle fails the build -------------------------------

NEW_SOFTMAX_LOSS = (
    '\nLOSSES = LOSSES + (Loss(name="new_softmax_loss", kind=ROWWISE, row_kernel="softmax",'
    ' input_name="logits", options=(), mean_over="valid_rows", formula="?"),)\n')


def _compile_cuda_with_extra_loss(tmp_path: Path, source: Path, files: tuple[str, ...]) -> str:
    """Compiler messages of the CUDA sources in `source` (host build) over _spec.py plus a new
    softmax-family loss; asserts that the build fails."""
    spec_copy = tmp_path / "_spec.py"
    spec_copy.write_text((ROOT / "python" / "fastloss" / "_spec.py").read_text() + NEW_SOFTMAX_LOSS)
    gen = tmp_path / "generated"
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_losses.py"), str(gen), str(spec_copy)], check=True)
    errors = ""
    for file in files:
        result = subprocess.run([CXX, *FLAGS, "-fsyntax-only", "-Werror=switch", f"-I{source}", f"-I{EMU / 'include'}",
                                 f"-I{ROOT / 'csrc'}", f"-I{gen}", "-x", "c++", str(source / file)],
                                capture_output=True, text=True, check=False)
        assert result.returncode != 0, f"{file} compiled with a row-wise loss it does not handle"
        errors += result.stderr
    return errors


def test_a_row_loss_missing_from_a_cuda_switch_fails_the_build(tmp_path):
    errors = _compile_cuda_with_extra_loss(tmp_path, CUDA, ("rowwise_f32.cu", "grad_hess.cu"))
    assert "LOSS_new_softmax_loss" in errors and "not handled in switch" in errors


def test_a_row_loss_added_to_the_switch_alone_fails_the_build(tmp_path):
    # The round-3 hazard: with only a `case` added, the softmax kernels' finalize fell through to
    # cross_entropy's. Now the loss's constants and finalize must be written too.
    src = tmp_path / "cuda"
    shutil.copytree(CUDA, src, ignore=shutil.ignore_patterns("emu"))
    text = (src / "rowwise.cuh").read_text()
    anchor = "    case LOSS_softmax_focal_loss: return launch_rowwise_loss<T, LOSS_softmax_focal_loss>(a, stream);\n"
    assert text.count(anchor) == 1
    (src / "rowwise.cuh").write_text(text.replace(
        anchor, anchor + "    case LOSS_new_softmax_loss: return launch_rowwise_loss<T, LOSS_new_softmax_loss>(a, stream);\n"))
    errors = _compile_cuda_with_extra_loss(tmp_path, src, ("rowwise_f32.cu",))
    assert "a new row-wise loss: read its options in RowConsts" in errors


def test_half_and_bfloat16_conversions_round_to_nearest_even(tmp_path):
    """Every float16 value, random bit patterns and values of every magnitude: the emulator's
    cuda_fp16/cuda_bf16 conversions give NumPy's and ml_dtypes' results (as CUDA's _rn do)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    exe = tmp_path / "conversions"
    subprocess.run([CXX, *FLAGS, f"-I{EMU / 'include'}", str(DRIVER.parent / "conversions.cpp"), "-o", str(exe)],
                   check=True)
    rng = np.random.default_rng(0)
    x = np.concatenate([
        np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32),
        rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        (rng.standard_normal(200_000) * 10.0 ** rng.uniform(-9, 6, 200_000)).astype(np.float32),
        np.array([65504, 65519.99, 65520, 2.9802322e-08, 5.96e-8, np.inf, -np.inf, np.nan], np.float32),
    ])
    out = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, check=True).stdout
    rec = np.frombuffer(out, dtype=np.dtype([("h", "<u2"), ("b", "<u2"), ("hf", "<f4"), ("bf", "<f4")]))
    nan = np.isnan(x)
    with np.errstate(over="ignore", invalid="ignore"):
        want_h, want_b = x.astype(np.float16), x.astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(rec["h"][~nan], want_h.view(np.uint16)[~nan])
    np.testing.assert_array_equal(rec["b"][~nan], want_b.view(np.uint16)[~nan])
    assert np.isnan(rec["h"].view(np.float16)[nan]).all() and np.isnan(rec["bf"][nan]).all()
    np.testing.assert_array_equal(rec["hf"], rec["h"].view(np.float16).astype(np.float32))
    np.testing.assert_array_equal(rec["bf"], rec["b"].view(ml_dtypes.bfloat16).astype(np.float32))
