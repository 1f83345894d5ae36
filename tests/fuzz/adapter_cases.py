"""placeholder"""
from __future__ import annotations

from .cases import Case


def build_adapter_case(seed, ep) -> Case:
    return Case(seed, ep.name, None, "float32", None, 1, build=lambda: ((), {}), kind=ep.kind)


def adapter_outcome(case: Case) -> tuple[str, str]:
    return "same answer", "not yet"
