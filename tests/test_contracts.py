"""The contracts transformers' and diffusers' own test mixins check, which hfgen's classes must keep: tuple outputs,
hidden states and attention weights, declared attention kernels, assisted generation, initialisation of every
weight on load, guidance 1.0, batch size from class labels, step callbacks and given starting noise."""

from __future__ import annotations

import pytest
import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback, SDCFGCutoffCallback
from diffusers.utils.torch_utils import randn_tensor
from safetensors.torch import load_file, save_file
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

from hfgen import DiffusionImagePipeline, GANConfig, GANDiscriminator, HfgenGPTConfig, HfgenGPTForCausalLM
from tiny_pipelines import TINY_GAN, tiny_diffusion, tiny_gan, tiny_pixel_gpt


def tiny_gpt(seed: int = 0, layers: int = 2, **config) -> HfgenGPTForCausalLM:
    torch.manual_seed(seed)
    config = HfgenGPTConfig(
        vocab_size=40, max_position_embeddings=32, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
        **config,
    )
    return HfgenGPTForCausalLM(config).eval()


IDS = torch.randint(0, 40, (2, 7), generator=torch.Generator().manual_seed(0))


# 1. return_dict=False, as an argument or in the config, gives transformers' tuple: (loss, logits, cache, ...).
@pytest.mark.parametrize("where", ["argument", "config"])
def test_return_dict_false_gives_a_tuple(where):
    model = tiny_gpt(**({"return_dict": False} if where == "config" else {}))
    outputs = model(IDS, labels=IDS, **({"return_dict": False} if where == "argument" else {}))
    assert isinstance(outputs, tuple)
    loss, logits, *_ = outputs
    reference = tiny_gpt()(IDS, labels=IDS)
    torch.testing.assert_close(loss, reference.loss)
    torch.testing.assert_close(logits, reference.logits)
    hidden, *_ = model.transformer(IDS, return_dict=False)
    torch.testing.assert_close(hidden, tiny_gpt().transformer(IDS).last_hidden_state)


# 2. Hidden states: the embeddings and each block's output, in forward and generate; assisted generation uses them.
def test_hidden_states_are_the_embeddings_and_each_layer():
    model = tiny_gpt(layers=3)
    outputs = model(IDS, output_hidden_states=True)
    assert len(outputs.hidden_states) == 3 + 1
    assert all(state.shape == (2, 7, 32) for state in outputs.hidden_states)
    embeddings = model.transformer.wte(IDS) + model.transformer.wpe(torch.arange(7))
    torch.testing.assert_close(outputs.hidden_states[0], embeddings)
    torch.testing.assert_close(outputs.hidden_states[-1], model.transformer(IDS).last_hidden_state)
    assert model(IDS).hidden_states is None  # only when asked

    generated = model.generate(
        IDS, max_new_tokens=4, do_sample=False, return_dict_in_generate=True, output_hidden_states=True
    )
    assert len(generated.hidden_states) == 4  # one tuple per generated token
    assert [state.shape[1] for state in generated.hidden_states[0]] == [7] * 4  # the prompt pass
    assert [state.shape[1] for state in generated.hidden_states[1]] == [1] * 4  # then one token at a time


def test_assisted_generation_with_a_tiny_assistant_matches_greedy():
    model, assistant = tiny_gpt(seed=0), tiny_gpt(seed=1, layers=1)
    prompt = IDS[:1]
    greedy = model.generate(prompt, max_new_tokens=8, do_sample=False)
    assisted = model.generate(
        prompt, max_new_tokens=8, do_sample=False, assistant_model=assistant, output_hidden_states=True,
        return_dict_in_generate=True,
    )
    assert torch.equal(assisted.sequences, greedy)


# 3. Eager attention is a real path: same logits as SDPA, and the weights it returns are causal distributions.
def test_eager_attention_matches_sdpa_and_returns_attention_weights():
    sdpa = tiny_gpt()
    eager = tiny_gpt(attn_implementation="eager")
    assert (sdpa.config._attn_implementation, eager.config._attn_implementation) == ("sdpa", "eager")
    mask = torch.ones_like(IDS)
    mask[1, :2] = 0  # left padding
    for attention_mask in (torch.ones_like(IDS), mask):
        expected = sdpa(IDS, attention_mask=attention_mask).logits
        outputs = eager(IDS, attention_mask=attention_mask, output_attentions=True)
        real = attention_mask.bool()  # padded positions' outputs are meaningless in both
        torch.testing.assert_close(outputs.logits[real], expected[real], rtol=1e-5, atol=1e-5)
    assert len(outputs.attentions) == 2
    future = torch.ones(7, 7, dtype=torch.bool).triu(diagonal=1)
    for weights in outputs.attentions:
        assert weights.shape == (2, 4, 7, 7)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 7))
        assert torch.all(weights[0][:, future] == 0)  # causal: no query attends to a later key
        assert torch.all(weights[1, :, 2:][:, future[2:]] == 0)  # (the real queries of the padded row too)
        assert torch.all(weights[1, :, 2:, :2] == 0)  # and no real token attends to padding
    # Switching kernels on a loaded model reaches the attention too.
    sdpa.set_attn_implementation("eager")
    assert sdpa(IDS, output_attentions=True).attentions[0].shape == (2, 4, 7, 7)


@pytest.mark.parametrize("implementation", ["flash_attention_2", "flex_attention"])
def test_unsupported_attention_implementations_are_refused(implementation):
    with pytest.raises((ValueError, ImportError)):
        tiny_gpt(attn_implementation=implementation)


# 4. Static-cache generation (declared by transformers for every model with a `Cache`) matches the dynamic cache.
#    `_can_compile_fullgraph` stays undeclared: fullgraph compilation of the decode step breaks (see README).
def test_static_cache_generation_matches_the_dynamic_cache_with_left_padding():
    model = tiny_gpt(pad_token_id=0)
    mask = torch.ones_like(IDS)
    mask[1, :3] = 0
    prompt = IDS.masked_fill(mask == 0, 0)
    run = lambda **kwargs: model.generate(prompt, attention_mask=mask, max_new_tokens=6, do_sample=False, **kwargs)
    assert torch.equal(run(cache_implementation="static"), run())


# 5. The discriminator's _init_weights sets every parameter and buffer, so what a checkpoint lacks is never garbage.
def tiny_discriminator(num_classes: int | None = None) -> GANDiscriminator:
    torch.manual_seed(0)
    return GANDiscriminator(GANConfig(**TINY_GAN, num_classes=num_classes)).eval()


def spectral_norms(model: torch.nn.Module) -> list[tuple[torch.Tensor, _SpectralNorm]]:
    """(raw weight, its spectral-norm parametrization) for each spectrally normalised layer."""
    return [
        (module.parametrizations.weight.original, module.parametrizations.weight[0])
        for module in model.modules()
        if parametrize.is_parametrized(module, "weight")
    ]


@pytest.fixture
def uninitialised_memory_is_nan(monkeypatch):
    """from_pretrained allocates what a checkpoint lacks with `torch.empty_like`: make that memory NaN, so anything
    `_init_weights` leaves unset shows."""
    empty_like = torch.empty_like
    monkeypatch.setattr(torch, "empty_like", lambda tensor, **kwargs: empty_like(tensor, **kwargs).fill_(float("nan")))


@torch.no_grad()
def test_init_weights_sets_every_parameter_and_buffer_including_spectral_norm(tmp_path, uninitialised_memory_is_nan):
    tiny_discriminator(num_classes=3).save_pretrained(tmp_path)
    save_file({"from_image.bias": torch.zeros(8)}, tmp_path / "model.safetensors", {"format": "pt"})  # all else missing
    model = GANDiscriminator.from_pretrained(tmp_path).eval()
    assert len(spectral_norms(model)) == len(model.blocks) + 3  # + from_image, to_logit, class_projection
    assert all(torch.isfinite(tensor).all() for tensor in [*model.parameters(), *model.buffers()])
    for weight, norm in spectral_norms(model):
        matrix = norm._reshape_weight_to_matrix(weight)
        # the power iteration was restarted from this weight: u^T W v estimates its largest singular value
        torch.testing.assert_close(norm._u.norm(), torch.tensor(1.0))
        sigma = torch.dot(norm._u, matrix @ norm._v)
        torch.testing.assert_close(sigma, torch.linalg.matrix_norm(matrix, ord=2), rtol=0.05, atol=0.0)
    assert torch.isfinite(model(torch.zeros(2, 1, 8, 8), class_labels=torch.tensor([0, 2])).logits).all()


def logits_and_features(model: GANDiscriminator, images: torch.Tensor, labels=None) -> tuple[torch.Tensor, torch.Tensor]:
    features = []
    hook = model.to_logit.register_forward_hook(lambda module, args, output: features.append(args[0]))
    logits = model(images, class_labels=labels).logits
    hook.remove()
    return logits, features[0]


@torch.no_grad()
def test_a_conditional_discriminator_warm_started_from_an_unconditional_one_gives_sensible_logits(
    tmp_path, uninitialised_memory_is_nan
):
    unconditional = tiny_discriminator()
    unconditional.save_pretrained(tmp_path)
    warm = GANDiscriminator.from_pretrained(tmp_path, num_classes=3).eval()
    images = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    expected, _ = logits_and_features(unconditional, images)
    logits, features = logits_and_features(warm, images, labels)
    assert torch.isfinite(logits).all()
    # The loaded layers score as before; the new projection adds <e_y, features>, its rows of norm <= ~1.
    projection = logits - expected
    assert torch.all(projection.abs() <= 1.05 * features.norm(dim=1))
    assert projection.abs().max() > 0


@torch.no_grad()
def test_a_checkpoint_missing_the_logit_layer_loads_finite(tmp_path, uninitialised_memory_is_nan):
    tiny_discriminator().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    kept = {name: tensor for name, tensor in weights.items() if not name.startswith("to_logit.")}
    save_file(kept, tmp_path / "model.safetensors", {"format": "pt"})
    model = GANDiscriminator.from_pretrained(tmp_path).eval()
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.isfinite(model(images).logits).all()
    assert all(torch.isfinite(tensor).all() for tensor in model.to_logit.state_dict().values())


# 6-8. The pipelines: guidance 1.0 means none, the batch follows the labels, step callbacks, given starting noise.
def sample(pipe, seed: int = 0, **kwargs) -> torch.Tensor:
    if isinstance(pipe, DiffusionImagePipeline):
        kwargs = {"num_inference_steps": 3} | kwargs
    return pipe(generator=torch.manual_seed(seed), output_type="pt", **kwargs).images


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_guidance_of_at_most_one_on_an_unconditional_model_is_no_guidance(scale):
    pipe = tiny_diffusion()
    torch.testing.assert_close(sample(pipe, batch_size=2, guidance_scale=scale), sample(pipe, batch_size=2), rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs a class-conditional model"):
        sample(pipe, batch_size=2, guidance_scale=2.0)
    conditional = tiny_diffusion(num_classes=3)  # and on a conditional model 1.0 needs no labels either
    torch.testing.assert_close(sample(conditional, guidance_scale=scale), sample(conditional), rtol=0, atol=0)


PIPELINES = {"diffusion": tiny_diffusion, "gan": tiny_gan, "pixel_gpt": tiny_pixel_gpt}


@pytest.mark.parametrize("family", PIPELINES)
def test_batch_size_comes_from_the_class_labels_and_each_label_can_have_several_images(family):
    pipe = PIPELINES[family](num_classes=3)
    from_labels = sample(pipe, class_labels=[0, 1, 2])
    assert from_labels.shape[0] == 3
    torch.testing.assert_close(from_labels, sample(pipe, batch_size=3, class_labels=[0, 1, 2]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="Got 3 class_labels for batch_size 2"):
        sample(pipe, batch_size=2, class_labels=[0, 1, 2])
    # num_images_per_prompt: each label's images side by side, as if the labels were repeated
    per_prompt = sample(pipe, class_labels=[0, 2], num_images_per_prompt=2)
    torch.testing.assert_close(per_prompt, sample(pipe, class_labels=[0, 0, 2, 2]), rtol=0, atol=0)
    assert sample(pipe, batch_size=2, class_labels=1, num_images_per_prompt=3).shape[0] == 6
    with pytest.raises(ValueError, match="num_images_per_prompt must be a positive integer"):
        sample(pipe, class_labels=0, num_images_per_prompt=0)


def test_a_diffusion_callback_sees_every_step_and_can_stop_early():
    pipe = tiny_diffusion()
    steps = []

    def record(pipe, step, timestep, tensors):
        steps.append((step, int(timestep), tensors["latents"].clone()))
        return tensors

    images = sample(pipe, batch_size=2, num_inference_steps=4, callback_on_step_end=record)
    assert [step for step, _, _ in steps] == [0, 1, 2, 3]
    assert [timestep for _, timestep, _ in steps] == pipe.scheduler.timesteps.tolist()
    assert all(latents.shape == (2, 1, 8, 8) for _, _, latents in steps)
    torch.testing.assert_close(images, (steps[-1][2] / 2 + 0.5).clamp(0, 1))  # the last step's latents are the images

    def stop_after_two(pipe, step, timestep, tensors):
        pipe._interrupt = step == 1
        return tensors

    early = sample(pipe, batch_size=2, num_inference_steps=4, callback_on_step_end=stop_after_two)
    torch.testing.assert_close(early, (steps[1][2] / 2 + 0.5).clamp(0, 1))
    assert pipe.interrupt
    sample(pipe, batch_size=2, num_inference_steps=4, callback_on_step_end=record)
    assert len(steps) == 8  # the next call resets the flag and runs every step

    zero = lambda pipe, step, timestep, tensors: {"latents": tensors["latents"] * 0}
    blank = sample(pipe, batch_size=2, callback_on_step_end=zero)
    torch.testing.assert_close(blank, torch.full((2, 1, 8, 8), 0.5))  # what a callback returns replaces the latents
    with pytest.raises(ValueError, match=r"callback_on_step_end_tensor_inputs \['noise'\]"):
        sample(pipe, callback_on_step_end=record, callback_on_step_end_tensor_inputs=["noise"])


def test_diffusers_callback_objects_name_their_own_tensor_inputs():
    class CountSteps(PipelineCallback):
        tensor_inputs = ["latents"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            self.steps = step_index + 1
            return callback_kwargs

    pipe, counter = tiny_diffusion(), CountSteps()
    sample(pipe, num_inference_steps=3, callback_on_step_end=MultiPipelineCallbacks([counter]))
    assert counter.steps == 3
    with pytest.raises(ValueError, match=r"\['prompt_embeds'\] are not offered by DiffusionImagePipeline"):
        sample(pipe, callback_on_step_end=SDCFGCutoffCallback(cutoff_step_ratio=0.5))  # a text-to-image callback


def test_diffusion_starts_from_given_latents():
    pipe = tiny_diffusion()
    noise = randn_tensor((2, 1, 8, 8), generator=torch.manual_seed(3))
    torch.testing.assert_close(sample(pipe, seed=0, latents=noise, batch_size=2), sample(pipe, seed=3, batch_size=2))
    with pytest.raises(ValueError, match=r"latents must have shape \(3, 1, 8, 8\)"):
        sample(pipe, batch_size=3, latents=noise)


def test_a_pixel_gpt_callback_sees_every_pixel_and_can_stop_early_or_replace_the_newest():
    pipe = tiny_pixel_gpt()
    seen = []

    def record(pipe, step, position, tensors):
        seen.append((step, position, tensors["tokens"]))
        return tensors

    sample(pipe, batch_size=2, callback_on_step_end=record)
    assert [position for _, position, _ in seen] == list(range(1, 65))
    assert all(tokens.shape == (2, 65) for _, _, tokens in seen)
    assert not torch.equal(seen[10][2], seen[20][2])  # each step's own copy

    def stop_after_ten(pipe, step, position, tensors):
        pipe._interrupt = step == 9
        return tensors

    stopped = sample(pipe, batch_size=2, callback_on_step_end=stop_after_ten).flatten(1)  # (2, 64) raster order
    torch.testing.assert_close(stopped[:, :10], seen[9][2][:, 1:11].float() / 16)
    assert torch.all(stopped[:, 10:] == 0)  # never sampled

    def white(pipe, step, position, tensors):
        tensors["tokens"][:, position] = 16
        return tensors

    assert torch.all(sample(pipe, batch_size=2, callback_on_step_end=white) == 1)

    def rewrite_history(pipe, step, position, tensors):
        tensors["tokens"][:, 1] = (tensors["tokens"][:, 1] + 1) % 17
        return tensors

    with pytest.raises(ValueError, match="may only replace the newest token"):
        sample(pipe, callback_on_step_end=rewrite_history)
