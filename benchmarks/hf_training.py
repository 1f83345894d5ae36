"""Hugging Face training step: HF's own loss vs fastloss.transformers.apply vs other fused heads (CPU).

    PYTHONPATH=python python benchmarks/hf_training.py            # the issue-23 shapes (tens of minutes)
    PYTHONPATH=python python benchmarks/hf_training.py --quick    # a small shape, a minute

Model: a random-init ``LlamaForCausalLM`` (2 layers, head dim 64, MLP 8/3 of the hidden size rounded
to 256, untied embeddings), trained with fused AdamW (``Trainer``'s default optimizer) on
``labels = input_ids``; fp32, and bf16 (the model cast to bf16, pure bf16 training). Variants, each
one training step = forward with labels, backward, ``optimizer.step``:

- ``hf``: the model's own loss (logits built, upcast to fp32, ``ForCausalLMLoss``);
- ``fastloss``: ``fastloss.transformers.apply(model)``, same loop;
- ``cce``: cut-cross-entropy's ``linear_cross_entropy(hidden, lm_head.weight, labels, shift=1,
  impl="torch_compile")`` on ``model.model``'s hidden states (its Triton ``cce`` impl needs a GPU);
- ``torch_chunked``: PyTorch's ``F.linear_cross_entropy`` (chunked) on the shifted hidden states;
- ``no_head`` (not in the default set): the floor of any head, the same step with the loss replaced
  by one row of the head's product, ``(h @ W[:1].T).float().pow(2).mean()``: every parameter
  gradient is still allocated, no logits are.

Each (shape, dtype, variant) runs in a fresh process on 2 threads: one warm-up step (optimizer state
allocated, cut-cross-entropy compiled), one step whose memory is measured, then ``--steps`` timed
steps (median wall seconds and process CPU seconds per step). Memory: VmRSS before the step (after
resetting VmHWM with ``clear_refs``), then VmHWM after the backward ("fwd+bwd peak": everything the
forward and backward made resident, the parameter gradients included) and after ``optimizer.step``
("whole step"); "beyond grads" subtracts the parameter gradients' size, which every variant must
hold. The variants of one (shape, dtype) run one after another, so they see the same machine load;
times on a shared machine stay noisy (the CPU-time ratio is the steadier one), memory does not.
"loss vs hf" is the largest relative difference of the per-step losses from the ``hf`` variant's
(same seed, same data).

Distillation head: ``fastloss.torch.linear_softmax_kl_div`` at (4096 tokens, hidden 512, vocab
32000), forward+backward into the student's hidden states and head, against building both logits
and calling ``fastloss.torch.softmax_kl_div`` on them (teacher logits under ``no_grad``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lm_head import _status_kb

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("hf", "fastloss", "cce", "torch_chunked")
FLOOR_VARIANT = "no_head"
SHAPES = {  # name: (vocab, hidden, layers, batch, sequence)
    "llama-32k": (32000, 512, 2, 4, 512),
    "llama-128k": (128256, 1024, 2, 2, 1024),
}
QUICK_SHAPES = {"quick-8k": (8000, 256, 2, 2, 256)}
THREADS = 2


def _reset_peak() -> int:
    """Reset VmHWM to the current RSS (Linux); returns that level in KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kb("VmRSS")


def _set_threads() -> None:
    import fastloss
    import torch

    torch.set_num_threads(THREADS)
    fastloss.set_num_threads(THREADS)


def _loss_fn(variant: str, model):
    """The callable (input_ids, labels) -> loss for a variant; None when it is not available here."""
    import torch
    import torch.nn.functional as F

    if variant in ("hf", "fastloss"):
        if variant == "fastloss":
            import fastloss.transformers

            fastloss.transformers.apply(model)
        return lambda ids, labels: model(input_ids=ids, labels=labels).loss
    head = model.get_output_embeddings()
    if variant == FLOOR_VARIANT:

        def no_head(ids, labels):
            hidden = model.model(input_ids=ids).last_hidden_state
            return (hidden @ head.weight[:1].T).float().pow(2).mean()

        return no_head
    if variant == "cce":
        try:
            from cut_cross_entropy import linear_cross_entropy as cce
        except ImportError:
            return None

        def cce_loss(ids, labels):
            hidden = model.model(input_ids=ids).last_hidden_state
            return cce(hidden, head.weight, labels, shift=1, impl="torch_compile")

        return cce_loss
    if not hasattr(F, "linear_cross_entropy"):
        return None

    def chunked_loss(ids, labels):
        hidden = model.model(input_ids=ids).last_hidden_state
        x = hidden[:, :-1].reshape(-1, hidden.shape[-1])
        loss = F.linear_cross_entropy(x, head.weight, labels[:, 1:].reshape(-1),
                                      options=torch.nn.LinearCrossEntropyOptions())
        return loss.float()

    return chunked_loss


def train_case(variant: str, shape: list[int], dtype_name: str, steps: int) -> dict:
    """One variant in this (fresh) process: warm-up, a memory-measured step, timed steps."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()
    _set_threads()
    vocab, hidden, layers, batch, seq = shape
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=(hidden * 8 // 3 + 255) // 256 * 256,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64,
                         num_key_value_heads=hidden // 64, max_position_embeddings=seq, use_cache=False)
    model = LlamaForCausalLM(config).to(getattr(torch, dtype_name))
    model.train()
    loss_fn = _loss_fn(variant, model)
    if loss_fn is None:
        return {"variant": variant, "missing": True}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # Trainer's default optimizer
    g = torch.Generator().manual_seed(1)
    data = [torch.randint(0, vocab, (batch, seq), generator=g) for _ in range(steps + 2)]

    def step(ids, marks=None):
        loss = loss_fn(ids, ids)
        loss.backward()
        if marks is not None:
            marks.append(_status_kb("VmHWM"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    losses = [step(data[0])]
    before, marks = _reset_peak(), []
    losses.append(step(data[1], marks))
    step_kb = _status_kb("VmHWM")
    grads_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    wall, cpu = [], []
    for ids in data[2:]:
        w0, c0 = time.perf_counter(), time.process_time()
        losses.append(step(ids))
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return {"variant": variant, "extra_mb": (marks[0] - before) / 1024, "step_mb": (step_kb - before) / 1024,
            "grads_mb": grads_mb, "wall_s": statistics.median(wall),
            "cpu_s": statistics.median(cpu), "losses": losses}


def distill_case(method: str, n: int, h: int, v: int, steps: int) -> dict:
    """Student/teacher heads at (n, h -> v): extra peak memory and median time of forward+backward."""
    import fastloss.torch as flt
    import torch

    _set_threads()
    g = torch.Generator().manual_seed(0)
    hs = torch.randn(n, h, generator=g).requires_grad_()
    ws = (torch.randn(v, h, generator=g) / h**0.5).requires_grad_()
    ht = torch.randn(n, h, generator=g)
    wt = torch.randn(v, h, generator=g) / h**0.5

    def step():
        hs.grad = ws.grad = None
        if method == "fused":
            loss = flt.linear_softmax_kl_div(hs, ws, ht, wt, temperature=2.0)
        else:
            with torch.no_grad():
                teacher = ht @ wt.T
            loss = flt.softmax_kl_div(hs @ ws.T, teacher, temperature=2.0)
        loss.backward()
        return float(loss)

    step()
    hs.grad = ws.grad = None
    before = _reset_peak()
    loss = step()
    extra_mb = (_status_kb("VmHWM") - before) / 1024
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"method": method, "extra_mb": extra_mb, "time_s": statistics.median(times), "loss": loss}


def _fresh(call: str, timeout: float = 1500) -> dict:
    """Run ``call`` (an expression on this module) in a fresh interpreter; its JSON result."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import hf_training as b; "
            f"print('RESULT ' + json.dumps({call}))")
    try:
        out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def run_training(shapes: dict, steps: int, lines: list[str], rows: list[dict],
                 dtypes=("float32", "bfloat16"), variants=VARIANTS) -> None:
    for name, shape in shapes.items():
        vocab, hidden, layers, batch, seq = shape
        for dtype in dtypes:
            lines.append(f"\n## {name}: vocab {vocab}, hidden {hidden}, {layers} layers, batch {batch}x{seq}, "
                         f"{dtype}, fused AdamW, {THREADS} threads\n")
            lines.append("variant | wall s/step | CPU s/step | CPU time vs hf | fwd+bwd peak MiB | vs hf | "
                         "beyond grads MiB | vs hf | whole step MiB | loss vs hf")
            lines.append("---|---|---|---|---|---|---|---|---|---")
            results = {}
            for variant in variants:
                r = _fresh(f"b.train_case({variant!r}, {list(shape)!r}, {dtype!r}, {steps})")
                results[variant] = r
                rows.append({"shape": name, "dims": list(shape), "dtype": dtype, **r})
                hf = results["hf"]
                if r.get("missing") or "error" in r:
                    lines.append(f"{variant} | {'not available' if r.get('missing') else r['error']} |" + " |" * 8)
                else:
                    diff = max(abs(a - b) / abs(b) for a, b in zip(r["losses"], hf["losses"]))
                    beyond, hf_beyond = r["extra_mb"] - r["grads_mb"], hf["extra_mb"] - hf["grads_mb"]
                    lines.append(
                        f"{variant} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {_ratio(r['cpu_s'], hf['cpu_s'])} | "
                        f"{r['extra_mb']:.0f} | {_ratio(r['extra_mb'], hf['extra_mb'])} | {beyond:.0f} | "
                        f"{_ratio(beyond, hf_beyond)} | {r['step_mb']:.0f} | {diff:.1e}"
                    )
                print(lines[-1], flush=True)


def run_distill(steps: int, lines: list[str], rows: list[dict], n=4096, h=512, v=32000) -> None:
    lines.append(f"\n## distillation head: {n} tokens, hidden {h} (student and teacher), vocab {v}, fp32, "
                 f"T=2, forward+backward, {THREADS} threads\n")
    lines.append("method | time s | time vs logits | extra peak MiB | memory vs logits")
    lines.append("---|---|---|---|---")
    base = None
    for method in ("logits", "fused"):
        r = _fresh(f"b.distill_case({method!r}, {n}, {h}, {v}, {steps})")
        rows.append({"distill": [n, h, v], **r})
        base = base or r
        name = "both logits + softmax_kl_div" if method == "logits" else "linear_softmax_kl_div"
        lines.append(f"{name} | {r['time_s']:.3f} | {_ratio(r['time_s'], base['time_s'])} | {r['extra_mb']:.0f} | "
                     f"{_ratio(r['extra_mb'], base['extra_mb'])}")
        print(lines[-1], flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one small shape, 2 timed steps")
    p.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 4; 2 with --quick)")
    p.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=None,
                   help="only these training shapes (default: all)")
    p.add_argument("--no-distill", action="store_true", help="skip the distillation-head table")
    p.add_argument("--dtypes", nargs="+", choices=["float32", "bfloat16"], default=["float32", "bfloat16"])
    p.add_argument("--variants", nargs="+", choices=VARIANTS + (FLOOR_VARIANT,), default=list(VARIANTS),
                   help="these variants (hf, the reference of the ratios, always runs first)")
    p.add_argument("--out", default=str(RESULTS / "hf_training.txt"))
    args = p.parse_args()
    steps = args.steps or (2 if args.quick else 4)
    import torch
    import transformers

    now = datetime.datetime.now(datetime.timezone.utc)
    title = (f"# Hugging Face training step ({now:%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, transformers "
             f"{transformers.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start)")
    lines = [title]
    rows: list[dict] = []
    shapes = QUICK_SHAPES if args.quick else {k: v for k, v in SHAPES.items() if k in (args.shapes or SHAPES)}
    variants = ["hf"] + [v for v in args.variants if v != "hf"]
    run_training(shapes, steps, lines, rows, args.dtypes, variants)
    if args.no_distill:
        pass
    elif args.quick:
        run_distill(steps, lines, rows, n=1024, h=256, v=8000)
    else:
        run_distill(steps + 1, lines, rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
