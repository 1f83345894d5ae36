"""Crash-safe campaigns: cases run in a worker subprocess; a worker that dies (segfault, abort,
sanitizer report) is reported as a finding with the seed it was running, and a new worker takes
the remaining seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_PKG = __package__ or "fuzz"
# the directory holding the top-level package of this one (tests/ or the repository root)
_ROOT = Path(__file__).resolve().parents[len(_PKG.split("."))]


def _worker_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT)] + [p for p in sys.path if p] )
    return env


def run_campaign(seeds: list[int], budget_s: float | None = None, log=None) -> dict:
    """Runs every seed (or as many as fit in budget_s); returns counts and findings."""
    counts = {"same answer": 0, "same error": 0, "FINDING": 0}
    findings: list[dict] = []
    pending = list(seeds)
    start = time.perf_counter()
    while pending:
        # the seeds go in a file: written to a pipe, they could fill it while the worker's results fill
        # the other one (a deadlock past ~10,000 seeds)
        with tempfile.NamedTemporaryFile("w", suffix=".seeds", delete=False) as f:
            f.write("\n".join(map(str, pending)) + "\n")
        errfile = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed below; not a pipe, which could fill
        proc = subprocess.Popen([sys.executable, "-m", f"{_PKG}.worker", f.name], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=errfile, text=True, env=_worker_env(),
                                cwd=str(_ROOT))
        assert proc.stdout is not None
        done = 0
        out_of_time = False
        for line in proc.stdout:
            rec = json.loads(line)
            done += 1
            counts[rec["status"]] += 1
            if rec["status"] == "FINDING":
                findings.append(rec)
                if log:
                    log(f"finding: {rec['case']}\n    {rec['detail']}")
            if budget_s is not None and time.perf_counter() - start > budget_s:
                out_of_time = True
                break
        if out_of_time:
            proc.kill()
            proc.wait()
            os.unlink(f.name)
            errfile.close()
            pending = pending[done:]
            counts["not run (time budget)"] = len(pending)
            break
        rc = proc.wait()
        errfile.seek(0)
        err = errfile.read()
        errfile.close()
        os.unlink(f.name)
        pending = pending[done:]
        if pending:  # the worker died during pending[0]
            seed = pending.pop(0)
            rec = {"seed": seed, "status": "FINDING", "case": f"seed={seed}",
                   "detail": f"worker crashed (exit {rc}): {err[-2000:]}"}
            counts["FINDING"] += 1
            findings.append(rec)
            if log:
                log(f"CRASH: seed={seed} (exit {rc})\n{err[-2000:]}")
        elif rc != 0:
            findings.append({"seed": -1, "status": "FINDING", "case": "worker exit", "detail": err[-2000:]})
            counts["FINDING"] += 1
    counts["seconds"] = round(time.perf_counter() - start, 1)
    return {"counts": counts, "findings": findings}
