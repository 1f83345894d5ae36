"""THE loss table, as data: every loss, its options and their kernel parameters, written once.

Everything else is derived from this file: the Python registry (``_registry.py`` adds validators and
reference functions by name), the public functions, the native parameter struct, each loss's own
parameter view ``<name>_params`` (the only options its kernels see), loss ids and X-macro lists
(``tools/gen_losses.py`` writes them into the build tree, so a stale or hand-edited C++ list cannot
exist), ``fastloss.torch`` (the drop-ins of losses PyTorch lacks, and the option plumbing of all),
``fastloss.jax``, the type stubs, the test grids (every option's ``example`` must change the result:
tests/test_every_option_matters.py), the CLI and the benchmarks. CONTRIBUTING.md says how to add a loss.

This module imports nothing but the standard library: the build runs it without numpy or fastloss.

Fields of an ``Opt``:

- ``type``: the kernel's C type of the value: ``"f64"`` (double), ``"i64"`` (int64), ``"bool"``,
  ``"choice"`` (the index of the value in ``choices``), or ``"class_vector"`` (an array of one value
  per class, passed to the kernel as the class-weight pointer; at most one per loss).
- ``example``: a value away from the default that ``python -m fastloss check`` and the benchmarks
  use to exercise the option (``"per-class"`` stands for a random class vector).
- ``check``: the name of the validator in ``_registry.VALIDATORS``.
- ``none_as``: the kernel value that stands for ``None`` (a scalar-or-vector option given as None,
  an optional scalar left off).
- ``vector_or_scalar``: a ``class_vector`` or ``broadcast_vector`` option that may also be a plain
  number (then it travels as the ``f64`` kernel parameter of the same name).

``"broadcast_vector"`` (point-wise losses): None, an array of the input's shape, or a vector along
the input's last axis (C,); the kernel reads element i's value at ``i % period`` of the flattened
array (period n or C), in the math type. At most ``MAX_BROADCAST_VECTORS`` per loss, passed to the
loss's kernel struct in the order of its options; an absent one reads as its scalar option of the
same name (``vector_or_scalar``) or ``none_as`` (default 1).

Fields of a ``Loss`` besides the obvious: ``difference`` marks a loss of ``e = input - target``
(d/dtarget = -d/dinput: framework adapters give the target a gradient); ``extra_reductions`` are
reductions besides none/mean/sum that only this loss takes (``"batchmean"``: sum / input.shape[0]);
``domain_unless`` names a bool option that, when true, lifts the target domain (kl_div's
``log_target``: log-probabilities may be negative).
"""

from __future__ import annotations

from dataclasses import dataclass

# The input dtypes, in the order of the native dtype codes (FlDtype, generated): the math is float64 for
# float64 and float32 for the others; bfloat16 travels as uint16 bits.
DTYPES = ("float32", "float64", "float16", "bfloat16")

ROWWISE = "rowwise"  # one loss per row along the class axis
POINTWISE = "pointwise"  # one loss per element; the target has the input's shape


@dataclass(frozen=True)
class Opt:
    name: str
    type: str  # f64 | i64 | bool | choice | class_vector | broadcast_vector
    default: object
    check: str  # validator name in _registry.VALIDATORS
    doc: str
    example: object = None  # a non-default value (``"per-class"``: a random class vector) for checks
    choices: tuple[str, ...] = ()
    none_as: float | None = None
    vector_or_scalar: bool = False


@dataclass(frozen=True)
class Loss:
    name: str
    kind: str  # ROWWISE | POINTWISE
    input_name: str  # the first positional argument, as in DESIGN.md 1.1
    options: tuple[Opt, ...]
    mean_over: str  # "target_weight" | "valid_rows" | "elements": the denominator of reduction="mean"
    formula: str
    row_kernel: str | None = None  # rowwise: the CPU/CUDA row kernel family ("softmax" | "hinge" | ...)
    soft_targets: bool = False  # rowwise: float targets of the input's shape are probabilities
    native_grad_hess: bool = True  # False: the *_grad_hess form runs the NumPy reference on every device
    logit_targets: bool = False  # rowwise: the target is always a float array of the input's shape holding
    #                              logits (any real values; e.g. a teacher's), never class indices
    target_values: tuple[float, ...] | None = None  # pointwise: allowed integer/bool target values
    target_range: tuple[float, float] | None = None  # pointwise: allowed float target interval
    difference: bool = False  # pointwise loss of e = input - target (the target gets -grad)
    extra_reductions: tuple[str, ...] = ()  # besides none/mean/sum, e.g. "batchmean"
    domain_unless: str | None = None  # a bool option that, when true, lifts the target domain


IGNORE_INDEX = Opt("ignore_index", "i64", -100, "integer", "target value whose rows give 0 loss and 0 gradient",
                   example=1)
MARGIN = Opt("margin", "f64", 1.0, "any_float", "margin", example=0.7)

LOSSES: tuple[Loss, ...] = (
    Loss(
        name="cross_entropy",
        kind=ROWWISE,
        input_name="logits",
        row_kernel="softmax",
        options=(
            Opt("weight", "class_vector", None, "class_vector", "per-class weights w (C,)", example="per-class"),
            IGNORE_INDEX,
            Opt("label_smoothing", "f64", 0.0, "unit_interval", "eps: mass spread uniformly over classes",
                example=0.1),
            Opt("z_loss", "f64", 0.0, "nonneg_float", "coefficient of the z-loss term lse**2", example=1e-3),
            Opt("softcap", "f64", None, "optional_positive_float", "z = softcap*tanh(x/softcap) if set",
                none_as=0.0, example=5.0),
        ),
        mean_over="target_weight",
        soft_targets=True,
        formula=(
            "l_i = (1-eps)*w_t*(lse - z_t) + (eps/C)*sum_c w_c*(lse - z_c) + z_loss*lse**2, "
            "lse = logsumexp(z); soft targets: l_i = -sum_c w_c*q_c*log p_c + z_loss*lse**2, "
            "q = (1-eps)*y + eps/C"
        ),
    ),
    Loss(
        name="softmax_focal_loss",
        kind=ROWWISE,
        input_name="logits",
        row_kernel="softmax",
        options=(
            Opt("alpha", "class_vector", None, "scalar_or_class_vector", "None, a scalar, or per-class (C,)",
                none_as=1.0, vector_or_scalar=True, example="per-class"),
            Opt("gamma", "f64", 2.0, "nonneg_float", "focusing exponent", example=0.5),
            IGNORE_INDEX,
        ),
        mean_over="valid_rows",
        formula="l_i = -alpha_t*(1-p_t)**gamma*log p_t",
    ),
    Loss(
        name="sigmoid_focal_loss",
        kind=POINTWISE,
        input_name="logits",
        options=(
            Opt("alpha", "f64", 0.25, "any_float", "weight of positives; alpha < 0 disables the term", example=0.6),
            Opt("gamma", "f64", 2.0, "nonneg_float", "focusing exponent", example=1.5),
        ),
        mean_over="elements",
        target_values=(0, 1),
        target_range=(0.0, 1.0),
        formula=(
            "p = sigmoid(x); ce = BCEWithLogits(x, y); p_t = p*y + (1-p)*(1-y); "
            "l = ce*(1-p_t)**gamma*(alpha*y + (1-alpha)*(1-y)) (alpha term only if alpha >= 0)"
        ),
    ),
    Loss(
        name="hinge_loss",
        kind=POINTWISE,
        input_name="scores",
        options=(MARGIN, Opt("squared", "bool", False, "boolean", "square each hinge", example=True)),
        mean_over="elements",
        target_values=(-1, 0, 1),
        formula="l = max(0, margin - y*s) (squared if squared); y in {-1, +1}, 0/False means -1",
    ),
    Loss(
        name="multiclass_hinge_loss",
        kind=ROWWISE,
        input_name="scores",
        row_kernel="hinge",
        options=(
            MARGIN,
            Opt("squared", "bool", False, "boolean", "square each hinge term", example=True),
            Opt("weight", "class_vector", None, "class_vector", "per-class weights w (C,), applied as w_t",
                example="per-class"),
            IGNORE_INDEX,
            Opt("variant", "choice", "crammer_singer", "choice",
                "crammer_singer (max over wrong classes) or weston_watkins (sum)",
                choices=("crammer_singer", "weston_watkins"), example="weston_watkins"),
        ),
        mean_over="valid_rows",
        formula=(
            "crammer_singer: l_i = w_t*max(0, margin + max_{j!=t} s_j - s_t); "
            "weston_watkins: l_i = w_t*sum_{j!=t} max(0, margin + s_j - s_t) (terms squared if squared)"
        ),
    ),
    Loss(
        name="huber_loss",
        kind=POINTWISE,
        input_name="input",
        options=(Opt("delta", "f64", 1.0, "positive_float", "threshold between quadratic and linear", example=0.5),),
        mean_over="elements",
        formula="e = x - y; l = 0.5*e**2 if |e| < delta else delta*(|e| - 0.5*delta)",
        difference=True,
    ),
    Loss(
        name="smooth_l1_loss",
        kind=POINTWISE,
        input_name="input",
        options=(Opt("beta", "f64", 1.0, "nonneg_float", "threshold; beta=0 is L1", example=0.25),),
        mean_over="elements",
        formula="e = x - y; l = 0.5*e**2/beta if |e| < beta else |e| - 0.5*beta",
        difference=True,
    ),
    Loss(
        name="mse_loss",
        kind=POINTWISE,
        input_name="input",
        options=(),
        mean_over="elements",
        formula="e = x - y; l = e**2 (F.mse_loss)",
        difference=True,
    ),
    Loss(
        name="l1_loss",
        kind=POINTWISE,
        input_name="input",
        options=(),
        mean_over="elements",
        formula="e = x - y; l = |e| (F.l1_loss; gradient sign(e), 0 at e = 0)",
        difference=True,
    ),
    Loss(
        name="log_cosh_loss",
        kind=POINTWISE,
        input_name="input",
        options=(),
        mean_over="elements",
        formula="e = x - y; l = log(cosh(e)) = |e| + log1p(exp(-2|e|)) - log 2 (finite for any finite e); "
                "gradient tanh(e)",
        difference=True,
    ),
    Loss(
        name="binary_cross_entropy_with_logits",
        kind=POINTWISE,
        input_name="logits",
        options=(
            Opt("weight", "broadcast_vector", None, "broadcast_vector",
                "None, an array of logits' shape, or (C,) along the last axis: multiplies each loss",
                example="per-class"),
            Opt("pos_weight", "broadcast_vector", None, "scalar_or_broadcast_vector",
                "None, a scalar, or (C,) along the last axis: weight of the positive term",
                none_as=1.0, vector_or_scalar=True, example="per-class"),
        ),
        mean_over="elements",
        target_values=(0, 1),
        target_range=(0.0, 1.0),
        formula=(
            "l = -w*(pw*y*log sigmoid(x) + (1-y)*log(1-sigmoid(x))) (F.binary_cross_entropy_with_logits), "
            "in log-space: finite for any finite logit"
        ),
    ),
    Loss(
        name="kl_div",
        kind=POINTWISE,
        input_name="input",
        options=(Opt("log_target", "bool", False, "boolean", "target holds log-probabilities", example=True),),
        mean_over="elements",
        target_range=(0.0, float("inf")),
        domain_unless="log_target",
        extra_reductions=("batchmean",),
        formula=(
            "input = log-probabilities (F.kl_div): l = target*(log target - input), 0 where target = 0; "
            "log_target: l = exp(t)*(t - input); reduction='batchmean' = sum / input.shape[0]"
        ),
    ),
    Loss(
        name="softmax_kl_div",
        kind=ROWWISE,
        input_name="logits",
        row_kernel="distill",
        native_grad_hess=False,
        options=(
            Opt("temperature", "f64", 1.0, "positive_float", "T: both logits are divided by T before the softmax",
                example=2.5),
        ),
        mean_over="valid_rows",
        logit_targets=True,
        formula=(
            "knowledge distillation, one fused pass: p = softmax(logits/T), q = softmax(target_logits/T), "
            "l_i = sum_c q_c*(log q_c - log p_c); gradient w.r.t. logits only, (p - q)/T; no T**2 factor "
            "(multiply by T**2 yourself for Hinton et al.'s scaling); target: the teacher's logits, "
            "of logits' shape; 'mean' divides by the number of rows. Accuracy: each row's loss within 64 "
            "rounding steps of the math type (float32 for float16/bfloat16 logits), relative, for finite logits at any "
            "temperature: a small loss (student close to the teacher, or a large T: ~1e-6 at T = 100) is "
            "summed as log1p(sum_c q_c (exp(-e_c) - 1 + e_c)), e = log q - log p - its q-mean, which does not cancel"
        ),
    ),
    Loss(
        name="wasserstein_loss",
        kind=ROWWISE,
        input_name="logits",
        row_kernel="wasserstein",
        native_grad_hess=False,
        options=(
            Opt("p", "i64", 1, "one_or_two", "exponent: 1 (EMD) or 2 (squared EMD, Hou et al. 2016)", example=2),
            IGNORE_INDEX,
        ),
        mean_over="valid_rows",
        soft_targets=True,
        formula=(
            "1-D earth mover's distance over ordered classes: l_i = sum_c |F_c - G_c|**p, F = cumsum(softmax(x)), "
            "G = cumsum(target distribution) (one-hot for class indices); p in {1, 2}. Accuracy of the gradient "
            "p_j (H_j - B) (H_j = sum_{c>=j} dl/dF_c, B = sum_k p_k H_k): each entry within ~2 eps p_j (|H_j - B| + "
            "|B|), eps the math type's rounding step (each p_k carries its exp's rounding into B, of order C), "
            "so an entry where H_j ~ B is less accurate relative to itself"
        ),
    ),    Loss(
        name="pseudo_huber_loss",
        kind=POINTWISE,
        input_name="input",
        options=(Opt("delta", "f64", 1.0, "positive_float", "scale of the residual where the loss turns from "
                     "quadratic to linear", example=0.5),),
        mean_over="elements",
        formula="e = x - y; l = delta**2*(sqrt(1 + (e/delta)**2) - 1) (XGBoost's reg:pseudohubererror); "
                "gradient e/sqrt(1 + (e/delta)**2), second derivative (1 + (e/delta)**2)**-1.5",
        difference=True,
    ),
)

KERNEL_TYPES = ("f64", "i64", "bool", "choice")  # the scalar kinds of LossParams fields
VECTOR_TYPES = ("class_vector", "broadcast_vector")  # array options: pointers, not LossParams fields
MAX_BROADCAST_VECTORS = 2  # FL_MAX_VECTORS of csrc/fastloss/kernels.h


def broadcast_options(loss: Loss) -> tuple[Opt, ...]:
    """The loss's per-element array options, in the order its kernel struct receives them."""
    return tuple(o for o in loss.options if o.type == "broadcast_vector")


def kernel_params() -> list[tuple[str, str]]:
    """The fields of the native ``LossParams`` struct: (name, type), one per scalar option name,
    in order of first appearance. An option name means the same kernel value in every loss."""
    fields: dict[str, str] = {}
    for loss in LOSSES:
        for opt in loss.options:
            kind = "f64" if opt.vector_or_scalar else opt.type
            if kind in VECTOR_TYPES:
                continue
            if fields.setdefault(opt.name, kind) != kind:
                raise ValueError(f"option {opt.name!r} has kernel type {kind} in {loss.name} "
                                 f"but {fields[opt.name]} elsewhere")
    return list(fields.items())


def kernel_param_names(loss: Loss) -> tuple[str, ...]:
    """The LossParams fields this loss's kernels read."""
    return tuple(o.name for o in loss.options if o.type not in VECTOR_TYPES or o.vector_or_scalar)


def table_signature() -> str:
    """One line that the compiled extension reports too: the import compares the two, so a build
    made from another version of this table fails loudly instead of computing the wrong loss."""
    losses = ";".join(f"{i}:{loss.name}:{loss.kind}:{','.join(kernel_param_names(loss))}"
                      + (f":v{len(broadcast_options(loss))}" if broadcast_options(loss) else "")
                      for i, loss in enumerate(LOSSES))
    params = ",".join(f"{name}={kind}" for name, kind in kernel_params())
    return f"{losses}|{params}|{','.join(DTYPES)}"
