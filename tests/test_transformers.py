"""fastloss.transformers.apply on the real Hugging Face library: random-init tiny models, no downloads.

Every check compares the patched model with an unpatched copy of the same weights running HF's own
loss (the reference), never with fastloss itself.
"""

from __future__ import annotations

import copy

import fastloss.transformers as flt
import pytest
import torch
import transformers  # the test extra installs it: a missing one fails, never skips

VOCAB, HIDDEN = 67, 32
_COMMON = {"vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": 48, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "pad_token_id": 0, "bos_token_id": 1,
           "eos_token_id": 2}


def _llama():
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**_COMMON))


def _mistral():
    return transformers.MistralForCausalLM(transformers.MistralConfig(**_COMMON))


def _qwen2():
    return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**_COMMON))


def _qwen3():
    return transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**_COMMON, head_dim=8))


def _gemma2():  # final_logit_softcapping small enough that the cap really bends the logits
    config = transformers.Gemma2Config(**_COMMON, head_dim=8, final_logit_softcapping=0.5,
                                       attn_implementation="eager")
    return transformers.Gemma2ForCausalLM(config)


def _phi3():
    return transformers.Phi3ForCausalLM(transformers.Phi3Config(**_COMMON))


def _gpt2():  # tied input and output embeddings
    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=2, n_head=4, n_positions=64,
                                     bos_token_id=1, eos_token_id=2, resid_pdrop=0.0, embd_pdrop=0.0,
                                     attn_pdrop=0.0)  # no dropout: both copies see the same network
    return transformers.GPT2LMHeadModel(config)


def _llama_with_bias():  # no HF family ships an lm_head bias by default; give one its own biased head
    model = _llama()
    model.lm_head = torch.nn.Linear(HIDDEN, VOCAB, bias=True)
    torch.nn.init.normal_(model.lm_head.bias, std=0.5)
    return model


FAMILIES = {
    "llama": _llama,
    "mistral": _mistral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "gemma2": _gemma2,
    "phi3": _phi3,
    "gpt2": _gpt2,
    "llama_bias": _llama_with_bias,
}


def _pair(make, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    reference = make().to(dtype)
    for p in reference.parameters():  # random-init heads are tiny; larger weights make the loss nontrivial
        torch.nn.init.normal_(p, std=0.3) if p.dim() > 1 else None
    patched = copy.deepcopy(reference)
    return reference, flt.apply(patched)


def _batch(seed=1, batch=3, length=11):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding in row 1, right padding in row 2
    mask[2, -3:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    return ids, mask, labels


def _max_rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def _assert_same_training(reference, patched, tol, loss_tol=None, **kwargs):
    out_ref = reference(**kwargs)
    out = patched(**kwargs)
    assert out.logits is None
    assert out.loss.dtype == torch.float32 == out_ref.loss.dtype
    loss_tol = tol if loss_tol is None else loss_tol
    assert abs(out.loss.item() - out_ref.loss.item()) <= loss_tol * abs(out_ref.loss.item()), (out.loss, out_ref.loss)
    out_ref.loss.backward()
    out.loss.backward()
    for (name, p_ref), (_, p) in zip(reference.named_parameters(), patched.named_parameters()):
        if p_ref.grad is None:
            assert p.grad is None, name
            continue
        assert _max_rel(p.grad, p_ref.grad) <= tol, (name, _max_rel(p.grad, p_ref.grad))


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_and_every_gradient_match_hf_fp32(family):
    reference, patched = _pair(FAMILIES[family])
    ids, mask, labels = _batch()
    _assert_same_training(reference, patched, 1e-5, input_ids=ids, attention_mask=mask, labels=labels)


@pytest.mark.parametrize("family, loss_tol", [("llama", 1e-5), ("gpt2", 1e-5), ("gemma2", 3e-2)])
def test_loss_and_gradients_match_hf_bf16(family, loss_tol):
    reference, patched = _pair(FAMILIES[family], torch.bfloat16)
    ids, mask, labels = _batch()
    # Both compute the loss in fp32 from the same bf16 logits (the fp32 loss is never rounded to bf16);
    # Gemma's softcap HF applies in bf16 (rounding thrice), fastloss in fp32 inside the kernel. The
    # gradients are bf16 tensors: bf16 tolerance.
    _assert_same_training(reference, patched, 3e-2, loss_tol, input_ids=ids, attention_mask=mask, labels=labels)


def test_num_items_in_batch_is_hf_gradient_accumulation_mean():
    reference, patched = _pair(_qwen2)
    ids, _, labels = _batch()
    n = torch.tensor(41)
    _assert_same_training(reference, patched, 1e-5, input_ids=ids, labels=labels, num_items_in_batch=n)
    assert patched(ids, labels=labels, num_items_in_batch=41).loss.item() == pytest.approx(
        reference(ids, labels=labels, num_items_in_batch=41).loss.item(), rel=1e-5)


def test_given_shift_labels_are_used_as_they_are():
    reference, patched = _pair(_mistral)
    ids, _, labels = _batch()
    shift = torch.roll(labels, 3, dims=1)  # any alignment the caller chose, not the default shift
    _assert_same_training(reference, patched, 1e-5, input_ids=ids, labels=labels, shift_labels=shift)


def test_positional_labels_and_tuple_output():
    reference, patched = _pair(_llama)
    ids, mask, labels = _batch()
    ref = reference(ids, mask, None, None, None, labels, return_dict=False)
    out = patched(ids, mask, None, None, None, labels, return_dict=False)
    # HF's tuple drops None fields: (loss, logits, cache) becomes (loss, cache) without logits
    assert len(out) == len(ref) - 1
    assert out[0].item() == pytest.approx(ref[0].item(), rel=1e-5)


def test_without_labels_the_model_is_unchanged():
    reference, patched = _pair(_gemma2)
    ids, mask, _ = _batch()
    with torch.no_grad():
        assert torch.equal(patched(ids, attention_mask=mask).logits, reference(ids, attention_mask=mask).logits)
        kept = patched(ids, logits_to_keep=2).logits
        assert torch.equal(kept, reference(ids, logits_to_keep=2).logits) and kept.shape == (3, 2, VOCAB)
    prompt = ids[:1, :5]
    assert torch.equal(patched.generate(prompt, max_new_tokens=6, do_sample=False),
                       reference.generate(prompt, max_new_tokens=6, do_sample=False))


def test_patch_is_per_instance_and_revert_restores_the_original():
    reference, patched = _pair(_llama)
    ids, _, labels = _batch()
    other = copy.deepcopy(reference)
    assert other(ids, labels=labels).logits.shape == (3, 11, VOCAB)  # the class is untouched
    assert flt.is_applied(patched) and not flt.is_applied(other)
    assert flt.apply(patched) is patched  # idempotent
    flt.revert(patched)
    assert not flt.is_applied(patched) and "_loss_function" not in vars(patched)
    out = patched(ids, labels=labels)
    assert torch.equal(out.logits, reference(ids, labels=labels).logits)
    with pytest.raises(ValueError, match="not applied"):
        flt.revert(patched)


def test_direct_loss_function_call_on_real_logits_is_hf_loss():
    reference, patched = _pair(_llama)
    logits = torch.randn(2, 5, VOCAB)
    labels = torch.randint(0, VOCAB, (2, 5))
    ours = patched.loss_function(logits, labels, vocab_size=VOCAB)
    assert ours.item() == reference.loss_function(logits, labels, vocab_size=VOCAB).item()


def test_clear_errors_for_models_it_cannot_handle():
    base = transformers.LlamaModel(transformers.LlamaConfig(**_COMMON))
    with pytest.raises(TypeError, match="no linear lm_head"):
        flt.apply(base)
    model = _llama()
    model.loss_function = lambda *a, **k: None
    with pytest.raises(ValueError, match="ForCausalLMLoss"):
        flt.apply(model)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        flt.apply(object())


def test_torch_compile_after_apply():
    reference, patched = _pair(_llama)
    ids, mask, labels = _batch()
    compiled = torch.compile(patched, backend="aot_eager")  # dynamo + AOT autograd; inductor's codegen is slow
    _assert_same_training(reference, compiled, 1e-5, input_ids=ids, attention_mask=mask, labels=labels)


def test_torch_compile_after_apply_bf16_gives_the_fp32_loss():
    reference, patched = _pair(_llama, torch.bfloat16)
    ids, mask, labels = _batch()
    compiled = torch.compile(patched, backend="aot_eager")
    _assert_same_training(reference, compiled, 3e-2, 1e-5, input_ids=ids, attention_mask=mask, labels=labels)


def test_trainer_with_gradient_accumulation_logs_hf_losses(tmp_path):
    g = torch.Generator().manual_seed(3)
    rows = []
    for i in range(8):  # varying numbers of ignored labels: num_items_in_batch matters
        ids = torch.randint(3, VOCAB, (10,), generator=g)
        labels = ids.clone()
        labels[: i % 5] = -100
        rows.append({"input_ids": ids, "labels": labels})

    def train(model, out):
        args = transformers.TrainingArguments(
            output_dir=str(tmp_path / out), per_device_train_batch_size=2, gradient_accumulation_steps=2,
            max_steps=2, logging_steps=1, learning_rate=1e-2, report_to=[], use_cpu=True, save_strategy="no",
            seed=0, data_seed=0,
        )
        trainer = transformers.Trainer(model=model, args=args, train_dataset=rows)
        trainer.train()
        return [h["loss"] for h in trainer.state.log_history if "loss" in h]

    reference, patched = _pair(_llama)
    ours, theirs = train(patched, "fastloss"), train(reference, "hf")
    assert len(ours) == len(theirs) == 2
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_import_fastloss_does_not_import_transformers():
    import subprocess
    import sys

    code = "import sys, fastloss, fastloss.torch; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_failed_forward_leaves_no_capture_behind():
    reference, patched = _pair(_llama)
    ids, _, labels = _batch()
    with pytest.raises(ValueError, match="labels give 15 targets but the lm_head got 33 positions"):
        patched(ids, labels=labels[:, :5])
    hidden = torch.randn(2, HIDDEN)
    assert torch.equal(patched.lm_head(hidden), reference.lm_head(hidden))
    assert patched(ids).logits.shape == (3, 11, VOCAB)


def test_chunk_size_reaches_the_fused_head(monkeypatch):
    """``apply(model, chunk_size=k)``: the head runs in chunks of k rows (33 tokens here: 5 chunks of 7,
    the last of 5), with HF's loss and gradients; applying again changes it; a bad value is refused."""
    from fastloss.torch import _head_chunks

    seen = []
    run_head = _head_chunks.run_head

    def recording(*args, chunk, **kwargs):
        seen.append(chunk)
        return run_head(*args, chunk=chunk, **kwargs)

    monkeypatch.setattr(_head_chunks, "run_head", recording)
    reference, patched = _pair(_llama)
    assert flt.apply(patched, chunk_size=7) is patched
    ids, mask, labels = _batch()
    _assert_same_training(reference, patched, 1e-5, input_ids=ids, attention_mask=mask, labels=labels)
    assert seen == [7]
    flt.apply(patched, chunk_size=1000)
    patched(ids, labels=labels)
    assert seen == [7, 1000]
    flt.apply(patched)  # back to the automatic size: all 33 rows of this tiny batch in one chunk
    patched(ids, labels=labels)
    assert seen[-1] == 33
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
            flt.apply(patched, chunk_size=bad)
