"""Seeded differential fuzzer: the native backend against the NumPy reference on adversarial calls.

Every case is one public call built from its seed alone (``cases.build``): any loss of
``fastloss.LOSSES``, any form, dtype, layout (axis, strides, misalignment, read-only, broadcast),
target kind and value, option value, reduction, ``grad_output`` and ``out=``, with special input
values (inf, nan, huge, subnormal, ties). ``compare.outcome`` runs it on both backends and
classifies it: the same answer within the dtype's tolerance, the same exception type on both with a
message naming an argument, or a finding. Cases run in a worker subprocess (``runner``), so a
crash is a finding reported with its seed, not the end of the run.

    python -m tests.fuzz --cases 20000          # a campaign (findings listed with their seeds)
    python -m tests.fuzz --seed 1234            # replay one case in this process, verbosely
"""
