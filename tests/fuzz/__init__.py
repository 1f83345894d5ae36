"""Seeded differential fuzzer over every public entry point, on adversarial calls.

Every case is one public call built from its seed alone: the seed picks an entry point
(``targets.choose``, stable when losses are added: a case is a function of its seed and the entry
point's name) and draws the call. Core losses (``cases``): any loss of ``fastloss.LOSSES`` in all
four forms (loss, ``_grad``, ``_with_grad``, ``_grad_hess``), any dtype, layout (axis, strides,
misalignment, read-only, broadcast), target kind and value, option value (the ends of the float
ranges included), reduction, ``grad_output``, ``sample_weight`` and ``out=``, with special values
(inf, nan, the dtype's maximum and minimum normal, subnormals, ties) in inputs, targets and teacher
logits; native against the NumPy reference (``compare``). Besides (``adapter_cases``): the NumPy LM
head (native against NumPy), the torch drop-ins and torch LM head against PyTorch itself, and
``fastloss.jax`` against the NumPy reference. The outcome is the same answer within the dtype's
tolerance (and the documented allowances of ``compare``), the same exception type on both sides
with a message naming an argument, or a finding. Cases run in a worker subprocess (``runner``), so
a crash is a finding reported with its seed, not the end of the run.

    python -m tests.fuzz --cases 20000          # a campaign (findings listed with their seeds)
    python -m tests.fuzz --seed 1234            # replay one case in this process, verbosely
"""
