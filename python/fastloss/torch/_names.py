"""Names of the spec-derived ``fastloss.torch`` modules: plain string work with no import, so the
build's stub writer (tools/gen_stubs.py) can use it where torch is not installed."""

# Words spelled as PyTorch spells them in class names (KLDivLoss, MultiMarginLoss).
_CLASS_WORDS = {"kl": "KL", "div": "Div", "multiclass": "MultiClass"}


def class_name(loss) -> str:
    """``log_cosh_loss`` -> ``LogCoshLoss``, ``softmax_kl_div`` -> ``SoftmaxKLDivLoss``."""
    words = loss.name.split("_")
    return "".join(_CLASS_WORDS.get(w, w.capitalize()) for w in words) + ("" if words[-1] == "loss" else "Loss")
