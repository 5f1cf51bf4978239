"""The autoregressive family in-process: the GPT (cache, tying, checkpointing, Auto classes), the pixel pipeline's
exact likelihood, text data, and clear errors for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

from hfgen import HfgenGPTConfig, HfgenGPTForCausalLM, HfgenGPTModel, PixelGPTPipeline
from hfgen.data import load_image_dataset
from hfgen.data.pixels import PixelVocabulary, pixel_transform
from hfgen.data.text import is_text_source, load_text_data, load_text_documents
from hfgen.families.autoregressive.sampling import check_sampling_options


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HFGEN_CACHE", str(tmp_path_factory.getbasetemp() / "hfgen-cache"))


def tiny_model(vocab_size: int = 40, context: int = 32, seed: int = 0) -> HfgenGPTForCausalLM:
    torch.manual_seed(seed)
    config = HfgenGPTConfig(
        vocab_size=vocab_size, max_position_embeddings=context, hidden_size=32, num_hidden_layers=2, num_attention_heads=4
    )
    return HfgenGPTForCausalLM(config).eval()


def tiny_pixel_pipeline(num_classes: int | None = None) -> PixelGPTPipeline:
    model = tiny_model(PixelVocabulary(17, num_classes).vocab_size, context=65)
    pipe = PixelGPTPipeline(model=model, resolution=8, channels=1, grey_levels=17, num_classes=num_classes)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_greedy_generate_is_identical_with_and_without_the_kv_cache():
    model = tiny_model()
    prompt = torch.randint(0, 40, (3, 5), generator=torch.Generator().manual_seed(1))
    cached = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=True)
    uncached = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=False)
    assert cached.shape == (3, 25) and torch.equal(cached, uncached)
    # The cached forward pass sees exactly the logits of the full pass.
    full = model(cached, use_cache=False).logits
    step = model(cached[:, :10], use_cache=True)
    step = model(cached[:, 10:], cache=step.cache, use_cache=True).logits
    torch.testing.assert_close(step, full[:, 10:], rtol=1e-4, atol=1e-5)


def test_sampling_options_reach_generate():
    model = tiny_model()
    prompt = torch.zeros(2, 3, dtype=torch.long)
    runs = [
        model.generate(prompt, do_sample=True, max_new_tokens=8, temperature=t, top_k=k, top_p=p)
        for t, k, p in ((0.7, None, None), (1.0, 5, None), (1.0, None, 0.9))
    ]
    assert all(r.shape == (2, 11) for r in runs)


def test_embeddings_are_tied_and_survive_the_auto_class_round_trip(tmp_path):
    model = tiny_model()
    assert model.lm_head.weight is model.transformer.wte.weight
    prompt = torch.tensor([[1, 2, 3]])
    expected = model.generate(prompt, max_new_tokens=10, do_sample=False)
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, HfgenGPTConfig) and config.tie_word_embeddings
    assert config.auto_map == {
        "AutoConfig": "configuration_hfgen_gpt.HfgenGPTConfig",
        "AutoModel": "modeling_hfgen_gpt.HfgenGPTModel",
        "AutoModelForCausalLM": "modeling_hfgen_gpt.HfgenGPTForCausalLM",
    }
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "modeling_hfgen_gpt.py").is_file()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, HfgenGPTForCausalLM) and loaded.lm_head.weight is loaded.transformer.wte.weight
    assert torch.equal(loaded.generate(prompt, max_new_tokens=10, do_sample=False), expected)
    assert isinstance(AutoModel.from_pretrained(tmp_path), HfgenGPTModel)


def test_gradient_checkpointing_gives_the_same_gradients():
    ids = torch.randint(0, 40, (2, 16), generator=torch.Generator().manual_seed(0))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model().train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(ids, labels=ids, use_cache=False).loss.backward()
        grads.append(model.transformer.h[0].attn.qkv.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])
    assert HfgenGPTForCausalLM._no_split_modules == ["HfgenGPTBlock"]


def test_sequences_longer_than_the_context_window_are_a_clear_error():
    model = tiny_model(context=16)
    with pytest.raises(ValueError, match="context window is 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="context window is 16"):
        model.generate(torch.zeros(1, 10, dtype=torch.long), max_new_tokens=10, do_sample=False)


def test_bad_config_and_sampling_options():
    with pytest.raises(ValueError, match="divisible"):
        HfgenGPTConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="temperature"):
        check_sampling_options(0.0, None, None)
    with pytest.raises(ValueError, match="temperature"):
        check_sampling_options(-1.0, None, None)
    for top_p in (0.0, 1.5):
        with pytest.raises(ValueError, match="top_p"):
            check_sampling_options(1.0, None, top_p)
    check_sampling_options(0.5, 10, 1.0)


def test_bits_per_dim_is_the_mean_token_nll_and_matches_the_sampler_conditionals():
    pipe = tiny_pixel_pipeline()
    test = load_image_dataset("digits", "test")[:20]
    bits = pipe.bits_per_dim(test["image"])
    # 1. the mean per-pixel NLL of the training objective's teacher-forced pass, / ln 2
    tokens = pixel_transform(8, 1, PixelVocabulary(17), class_conditional=False)(test)["input_ids"]  # (20, 65)
    with torch.no_grad():
        logits = pipe.model(tokens[:, :-1]).logits[..., :17]
    nll = F.cross_entropy(logits.reshape(-1, 17), tokens[:, 1:].reshape(-1))
    assert bits == pytest.approx(float(nll) / math.log(2), rel=1e-5)
    # 2. the chain rule, one pixel at a time through the KV cache (what sampling uses)
    with torch.no_grad():
        out = pipe.model(tokens[:, :1], use_cache=True)
        total = torch.zeros(20, dtype=torch.float64)
        for t in range(1, 65):
            total += F.log_softmax(out.logits[:, -1, :17].double(), -1).gather(1, tokens[:, t : t + 1]).squeeze(1)
            out = pipe.model(tokens[:, t : t + 1], cache=out.cache, use_cache=True)
    torch.testing.assert_close(pipe.log_likelihood(test["image"]), total, rtol=1e-5, atol=1e-4)
    # An untrained model is near uniform over the 17 levels: log2(17) = 4.09 bits/dim.
    assert 3.5 < bits < 4.7


def test_pixel_sampling_draws_each_pixel_from_the_full_context_conditional():
    """The sampler's in-place (static) KV cache gives the logits of a full, uncached pass at every step."""
    pipe = tiny_pixel_pipeline()
    images = pipe(batch_size=3, generator=torch.Generator().manual_seed(0), output_type="pt").images
    generator = torch.Generator().manual_seed(0)
    tokens = PixelVocabulary(17).first_tokens(None, 3)  # (3, 1)
    with torch.no_grad():
        for _ in range(64):
            logits = pipe.model(tokens, use_cache=False).logits[:, -1, :17]
            drawn = torch.multinomial(F.softmax(logits.float(), dim=-1), 1, generator=generator)
            tokens = torch.cat([tokens, drawn], 1)
    assert torch.equal(images, tokens[:, 1:].view(3, 1, 8, 8) / 16)


def test_pixel_pipeline_round_trip_sampling_and_completion(tmp_path):
    pipe = tiny_pixel_pipeline(num_classes=10)
    images = pipe(batch_size=4, generator=torch.manual_seed(0), class_labels=[0, 1, 2, 3], output_type="pt").images
    assert images.shape == (4, 1, 8, 8)
    assert torch.equal(torch.round(images * 16), images * 16)  # every pixel is one of the 17 levels
    pipe.save_pretrained(tmp_path)
    loaded = PixelGPTPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert (loaded.config.resolution, loaded.config.grey_levels, loaded.config.num_classes) == (8, 17, 10)
    again = loaded(batch_size=4, generator=torch.manual_seed(0), class_labels=[0, 1, 2, 3], output_type="pt").images
    assert torch.equal(images, again)
    # Completion keeps the given rows and resamples the rest; the likelihood of its output is finite.
    digits = load_image_dataset("digits", "test")[:4]
    given = torch.from_numpy(np.stack([np.asarray(i) for i in digits["image"]])).unsqueeze(1)  # (4, 1, 8, 8) uint8
    as_uint8 = lambda pt: torch.round(pt * 255).to(torch.uint8)
    done = pipe.complete(
        digits["image"], known_rows=3, class_labels=digits["label"], generator=torch.manual_seed(1), output_type="pt"
    ).images
    assert torch.equal(as_uint8(done)[:, :, :3], given[:, :, :3])
    assert not torch.equal(as_uint8(done)[:, :, 3:], given[:, :, 3:])
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:, :4] = True  # left half known
    done = pipe.complete(given, mask=mask, class_labels=digits["label"], generator=torch.manual_seed(1), output_type="pt").images
    assert torch.equal(as_uint8(done)[..., :4], given[..., :4])
    conditional = pipe.log_likelihood(done, class_labels=digits["label"])
    assert torch.isfinite(conditional).all()
    # Without labels: the exact marginal under a uniform class prior, log mean_c p(x | c).
    per_class = torch.stack([pipe.log_likelihood(done, class_labels=c) for c in range(10)])  # (10, 4)
    marginal = pipe.log_likelihood(done)
    torch.testing.assert_close(marginal, per_class.exp().mean(0).log())
    assert (marginal >= per_class.max(0).values - math.log(10) - 1e-9).all()


def test_pixel_pipeline_rejects_bad_input():
    pipe = tiny_pixel_pipeline()
    stray = Image.fromarray(np.full((8, 8), 100, dtype=np.uint8))  # 100 is not round(v * 255 / 16) for any level v
    with pytest.raises(ValueError, match=r"\[100\] are outside this model's vocabulary of 17 grey levels"):
        pipe.log_likelihood([stray])
    with pytest.raises(ValueError, match="outside this model's vocabulary"):
        pipe.complete([stray], known_rows=2)
    with pytest.raises(ValueError, match="8x8"):
        pipe.log_likelihood([Image.new("L", (9, 9))])
    with pytest.raises(ValueError, match="unconditional"):
        pipe(class_labels=1)
    with pytest.raises(ValueError, match="temperature"):
        pipe(temperature=0)
    with pytest.raises(ValueError, match="exactly one"):
        pipe.complete([Image.new("L", (8, 8))])
    with pytest.raises(ValueError, match="vocab_size"):
        PixelGPTPipeline(model=tiny_model(vocab_size=30, context=65), resolution=8, channels=1, grey_levels=17)


def test_text_data_tokenizer_blocks_and_cache(tmp_path):
    data = load_text_data("python-stdlib", block_size=32, vocab_size=300, max_chars=60_000)
    assert data.train.shape[1] == 1 and data.train[:2]["input_ids"].shape == (2, 32)
    assert len(data.validation) > 0 and len(data.train) > 10 * len(data.validation)
    data.tokenizer.save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    text = "def fib(n):\n    return n"
    assert tokenizer.decode(tokenizer(text).input_ids) == text  # byte-level: lossless
    again = load_text_data("python-stdlib", block_size=32, vocab_size=300, max_chars=60_000)  # from the cache
    assert torch.equal(again.train[:]["input_ids"], data.train[:]["input_ids"])


def test_empty_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        load_text_documents(str(tmp_path / "empty.txt"))
    with pytest.raises(ValueError, match="is empty"):
        load_text_documents(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not found"):
        load_text_documents(str(tmp_path / "missing.txt"))


def test_modality_detection(tmp_path):
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.md").write_text("# hi")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "metadata.csv").write_text("file_name,label")
    Image.new("L", (8, 8)).save(tmp_path / "images" / "a.png")
    assert is_text_source("python-stdlib") and is_text_source(str(tmp_path / "text"))
    assert not is_text_source("digits") and not is_text_source(str(tmp_path / "images"))
