"""Named architectures: each preset's parameter count from the family's real classes, and `--preset` on `hfgen train`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

import pytest
import torch
from diffusers import UNet2DModel

from hfgen.data.pixels import PixelVocabulary
from hfgen.families import Preset, families, family_names, get_family, preset_table
from hfgen.training.launch import parse_run, train

PRESETS = [preset for family in families() for preset in family.presets]

PUBLISHED = {
    "ddpm-cifar10": {"unet": 35_746_307},  # google/ddpm-cifar10-32's UNet2DModel; Ho et al.: 35.7M
    "dcgan": {"generator": 3_576_704, "discriminator": 2_765_568},  # PyTorch's DCGAN example, RGB, nz 100
    "gpt2": {"model": 124_439_808},  # HF gpt2 / nanoGPT with tied embeddings
    "beta-vae": {"vae": 764_245},  # disentanglement_lib conv_encoder + deconv_decoder, 64x64x1, 10 latents
}
PUBLISHED_MILLIONS = {"ldm-celebahq-256": 274}  # Rombach et al. 2022, Table 14, rounded to millions there


def counts(modules: dict[str, torch.nn.Module]) -> dict[str, int]:
    return {name: sum(p.numel() for p in module.parameters()) for name, module in modules.items()}


def grey_levels(preset: Preset) -> int:
    """The small presets are sized for digits' 17 grey levels; published ones for 8-bit images."""
    return 17 if preset.name.endswith("-small") else 256


def unet(arguments, preset: Preset) -> dict[str, torch.nn.Module]:
    return {"unet": UNet2DModel.from_config(arguments.default_unet_config(preset.resolution, preset.channels, None))}


def gan(arguments, preset: Preset) -> dict[str, torch.nn.Module]:
    from hfgen import GANDiscriminator, GANGenerator

    config = arguments.gan_config(preset.resolution, preset.channels, None)
    return {"generator": GANGenerator(config), "discriminator": GANDiscriminator(config)}


def vae(arguments, preset: Preset) -> dict[str, torch.nn.Module]:
    from hfgen import VAEModel

    return {"vae": VAEModel(arguments.vae_config(preset.resolution, preset.channels, grey_levels(preset)))}


def gpt(arguments, preset: Preset) -> dict[str, torch.nn.Module]:
    from hfgen import HfgenGPTForCausalLM

    if preset.resolution is None:  # text: a BPE of --vocab_size tokens, --block_size positions
        data = {"vocab_size": arguments.vocab_size, "max_position_embeddings": arguments.block_size}
    else:  # pixels: grey levels + start token, one position per sub-pixel after it
        data = {
            "vocab_size": PixelVocabulary(grey_levels(preset)).vocab_size,
            "max_position_embeddings": 1 + preset.resolution**2 * preset.channels,
        }
    return {"model": HfgenGPTForCausalLM(arguments.gpt_config(**data))}


BUILDERS: dict[str, Callable] = {"diffusion": unet, "latent-diffusion": unet, "gan": gan, "vae": vae, "autoregressive": gpt}
"""Family -> the modules its objective builds from its arguments, for a preset's published input shape."""


@pytest.mark.parametrize("preset", PRESETS, ids=lambda preset: preset.name)
def test_parameter_count_of_the_real_model_is_the_recorded_one(preset):
    required = {"vae": "unused"} if preset.family == "latent-diffusion" else {}  # its autoencoder is not counted
    arguments = get_family(preset.family).arguments(**required, **preset.arguments)
    with torch.device("meta"):  # real classes, no memory or init time
        assert counts(BUILDERS[preset.family](arguments, preset)) == dict(preset.parameters)


def test_recorded_counts_are_the_published_ones():
    recorded = {preset.name: dict(preset.parameters) for preset in PRESETS}
    for name, parameters in PUBLISHED.items():
        assert recorded[name] == parameters, name
    for name, millions in PUBLISHED_MILLIONS.items():
        assert round(sum(recorded[name].values()) / 1e6) == millions, name


def test_every_family_has_its_defaults_and_a_published_preset():
    names = [preset.name for preset in PRESETS]
    assert len(names) == len(set(names))
    for family in families():
        assert len(family.presets) >= 2, family.name
        small, *published = family.presets
        assert small.name == f"{family.name}-small" and not small.arguments
        assert all(preset.family == family.name and preset.source and preset.arguments for preset in published)


@pytest.mark.parametrize("family_name", family_names())
def test_the_small_preset_is_no_preset(family_name):
    required = ["--vae", "unused"] if family_name == "latent-diffusion" else []
    *_, model = parse_run(family_name, required)
    *_, with_preset = parse_run(family_name, [*required, "--preset", f"{family_name}-small"])
    assert with_preset == model


def test_flags_and_config_file_override_the_preset(tmp_path):
    training, _, model = parse_run("gan", ["--preset", "dcgan", "--latent_dim", "64"])
    assert training.preset == "dcgan"
    assert (model.layout, model.generator_channels, model.spectral_norm, model.latent_dim) == ("dcgan", 512, False, 64)
    config = tmp_path / "options.yaml"
    config.write_text("preset: ddpm-cifar10\ndropout: 0.3\n")
    training, _, model = parse_run("diffusion", ["--config", str(config), "--layers_per_block", "1"])
    assert training.preset == "ddpm-cifar10"
    assert (model.block_out_channels, model.dropout, model.layers_per_block) == ([128, 256, 256, 256], 0.3, 1)


def test_unknown_preset_is_one_line_naming_the_valid_ones():
    with pytest.raises(ValueError) as error:
        parse_run("gan", ["--preset", "stylegan"])
    assert str(error.value) == "Unknown preset 'stylegan' for gan: use one of gan-small, dcgan."


def test_training_args_json_records_the_preset_and_the_model_arguments(tmp_path):
    out = tmp_path / "run"
    argv = ["--preset", "dcgan", "--latent_dim", "16", "--max_steps", "1", "--train_batch_size", "4", "--num_grid_images", "4",
            "--output_dir", str(out)]
    train("gan", argv)
    recorded = json.loads((out / "training_args.json").read_text())
    assert recorded["training"]["preset"] == "dcgan"
    assert recorded["model"] == asdict(parse_run("gan", argv)[2])
    assert (recorded["model"]["layout"], recorded["model"]["latent_dim"]) == ("dcgan", 16)
    assert json.loads((out / "gan_generator" / "config.json").read_text())["layout"] == "dcgan"


def test_preset_table_lists_every_preset_with_its_source():
    lines = preset_table().splitlines()
    assert lines[0] == "| preset | family | resolution | channels | parameters | source |"
    for preset in PRESETS:
        assert any(line.startswith(f"| {preset.name} | {preset.family} |") and preset.source in line for line in lines)
    assert "| dcgan | gan | 64 | 3 | generator 3,576,704, discriminator 2,765,568 |" in preset_table()


def test_hfgen_presets_prints_the_table_and_refuses_options(capsys):
    from hfgen.cli import main

    assert main(["presets"]) == 0
    assert capsys.readouterr().out.strip() == preset_table()
    assert main(["presets", "--family", "gan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hfgen: error:") and "--preset NAME" in err[0]
