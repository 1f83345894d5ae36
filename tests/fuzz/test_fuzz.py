"""The differential fuzzer in the normal suite: a few thousand seeded cases in a worker
subprocess, native against the NumPy reference; any finding fails with its seed for replay
(``python -m tests.fuzz --seed N``). FASTLOSS_FUZZ_CASES / FASTLOSS_FUZZ_START change the range."""

from __future__ import annotations

import os

import pytest
from fastloss import _backends

from .runner import run_campaign

CASES = int(os.environ.get("FASTLOSS_FUZZ_CASES", "3000"))
START = int(os.environ.get("FASTLOSS_FUZZ_START", "0"))
BUDGET_S = 60.0  # the suite's share; a slow (sanitizer) build runs fewer cases rather than more time


@pytest.mark.skipif("native" not in _backends.available(), reason="differential: needs the native backend")
def test_fuzz_native_matches_reference():
    res = run_campaign(list(range(START, START + CASES)), budget_s=BUDGET_S)
    counts, findings = res["counts"], res["findings"]
    print(counts)
    assert counts["same answer"] + counts["same error"] >= min(CASES, 300), counts
    report = "\n".join(f"{f['case']}\n    {f['detail']}" for f in findings[:20])
    assert not findings, f"{len(findings)} findings (replay: python -m tests.fuzz --seed N):\n{report}"
