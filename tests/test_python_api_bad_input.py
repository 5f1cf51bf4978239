"""The Python API's bad-input sweep, the counterpart of the CLI's: every argument of every public pipeline's
`__call__`, generated from its signature, gets each bad value its annotated type admits (a wrong type, None where
None means nothing, nan/inf, negative, absurdly large), and `from_pretrained` / `load_pipeline` get bad paths and
options. Each must be refused with one line naming the argument - before the pipeline's network runs."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable

import pytest
import torch
from diffusers.callbacks import PipelineCallback

from hfgen import DiffusionImagePipeline, GANPipeline, VAEPipeline
from hfgen.families.latent_diffusion import LatentDiffusionPipeline
from hfgen.loading import load_pipeline
from tiny_pipelines import tiny_diffusion, tiny_gan, tiny_latent_diffusion, tiny_pixel_gpt, tiny_vae

NAN, INF = float("nan"), float("inf")

# Each pipeline conditional where it can be (more arguments matter), its network, and a valid call to vary.
PIPELINES: dict[str, tuple[Callable, Callable, dict]] = {
    "diffusion": (lambda: tiny_diffusion(3), lambda pipe: pipe.unet, {"class_labels": 1, "num_inference_steps": 2}),
    "latent_diffusion": (lambda: tiny_latent_diffusion(3), lambda pipe: pipe.unet, {"class_labels": 1, "num_inference_steps": 2}),
    "gan": (lambda: tiny_gan(3), lambda pipe: pipe.gan_generator, {"class_labels": 1}),
    "vae": (tiny_vae, lambda pipe: pipe.vae.decoder, {}),
    "pixel_gpt": (lambda: tiny_pixel_gpt(3), lambda pipe: pipe.model, {"class_labels": 1}),
}
VALID = {"batch_size": 2, "output_type": "pt"}


def bad_values(hint: object) -> list[object]:
    """The bad values of one annotated type; a type not listed here fails the sweep, so none goes unswept."""
    members = set(typing.get_args(hint)) if typing.get_origin(hint) in (typing.Union, types.UnionType) else {hint}
    values = [] if type(None) in members else [None]
    members.discard(type(None))
    literals = [member for member in members if typing.get_origin(member) is typing.Literal]
    if literals:  # a choice: an unknown one, a wrong type, and "latent" where a pipeline has none
        choices = typing.get_args(literals[0])
        return values + ["jpeg", 3] + (["latent"] if "pt" in choices and "latent" not in choices else [])
    if members == {bool}:
        return values + ["yes", 1]
    if torch.Generator in members:
        return values + ["x", 3, ["x"], [torch.Generator()] * 7]
    if int in members and torch.Tensor in members:  # class labels
        return values + ["x", 2.5, NAN, True, -1, 10**12, [0.5], torch.tensor([0.5])]
    if members == {int}:
        return values + ["2", 2.5, True, NAN, INF, 0, -1, 10**12]
    if members == {float}:
        return values + ["1", NAN, INF, -INF, -1.0, 1e300]
    if members == {torch.Tensor}:
        return values + ["x", torch.zeros(0), torch.zeros(2, 3, dtype=torch.long)]
    if PipelineCallback in members:  # callback_on_step_end
        return values + ["x", 3]
    if list[str] in members:  # callback_on_step_end_tensor_inputs
        return values + ["latents", [3], ["noise"]]
    raise AssertionError(f"No bad values for the annotation {hint}: add them to bad_values.")


def call_cases() -> list[tuple[str, str, object]]:
    cases = []
    for family, (build, _, base) in PIPELINES.items():
        pipeline_class = type(build())
        hints = typing.get_type_hints(pipeline_class.__call__)
        for name in call_arguments(pipeline_class):
            cases += [(family, name, value) for value in bad_values(hints[name])]
    return cases


def call_arguments(pipeline_class: type) -> list[str]:
    return list(inspect.signature(pipeline_class.__call__).parameters)[1:]  # after self


CALL_CASES = call_cases()
# Bad values no type alone tells: latents of the right shape but not finite, a generator list of the wrong length.
CALL_CASES += [
    ("diffusion", "latents", torch.full((2, 1, 8, 8), NAN)),
    ("gan", "latents", torch.full((2, 16), INF)),
    ("vae", "generator", [torch.Generator()]),
]


@pytest.fixture(scope="module")
def pipes():
    return {family: build() for family, (build, _, _) in PIPELINES.items()}


def case_id(value: object) -> str:
    return f"tensor{tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"{value!r:.24}"


@pytest.mark.parametrize(("family", "name", "value"), CALL_CASES, ids=[f"{f}-{n}-{case_id(v)}" for f, n, v in CALL_CASES])
def test_every_bad_call_argument_is_refused_by_name_before_the_network_runs(pipes, family, name, value):
    pipe, (_, network, base) = pipes[family], PIPELINES[family]
    calls = []
    hook = network(pipe).register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        with pytest.raises((ValueError, TypeError)) as error:
            pipe(**VALID | base | {name: value})
    finally:
        hook.remove()
    message = str(error.value)
    assert name in message and "\n" not in message, message
    assert not calls, "the network ran before the bad argument was refused"
    if name in ("batch_size", "num_images_per_prompt") and value == 10**12:
        assert "GiB" in message and "lower batch_size" in message  # how much it would need, and the fix


def test_the_sweep_covers_every_argument_of_every_pipeline():
    swept = {(family, name) for family, name, _ in CALL_CASES}
    for family, (build, _, _) in PIPELINES.items():
        assert {(family, name) for name in call_arguments(type(build()))} <= swept
    assert len(CALL_CASES) >= 200


def test_a_batch_that_fits_is_still_generated():
    images = tiny_gan(3)(batch_size=300, class_labels=1, output_type="pt").images
    assert images.shape == (300, 1, 8, 8)


# from_pretrained / load_pipeline: (arguments, error types, what the message must name)
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diffusion")
    tiny_diffusion(3).save_pretrained(folder)
    (folder / "notes.txt").write_text("not a model")
    (folder / "empty").mkdir()
    return folder


LOAD_CASES = {
    "path None": (lambda f: {"path": None}, TypeError, "None"),
    "path int": (lambda f: {"path": 3}, TypeError, "3"),
    "path empty": (lambda f: {"path": ""}, ValueError, "''"),
    "path blank": (lambda f: {"path": "  "}, ValueError, "'  '"),
    "path a file": (lambda f: {"path": str(f / "notes.txt")}, NotADirectoryError, "is a file, not a folder"),
    "path model_index.json": (lambda f: {"path": str(f / "model_index.json")}, NotADirectoryError, "holds model_index.json"),
    "path missing": (lambda f: {"path": str(f / "absent")}, FileNotFoundError, "does not exist"),
    "path no model_index.json": (lambda f: {"path": str(f / "empty")}, FileNotFoundError, "has no model_index.json"),
    "revision int": (lambda f: {"path": str(f), "revision": 3}, TypeError, "revision"),
    "revision on a folder": (lambda f: {"path": str(f), "revision": "v1"}, ValueError, "revision"),
    "pipeline_class str": (lambda f: {"path": str(f), "pipeline_class": "GANPipeline"}, TypeError, "pipeline_class"),
    "pipeline_class other family": (lambda f: {"path": str(f), "pipeline_class": GANPipeline}, ValueError, "GANPipeline"),
    "use_safetensors False": (lambda f: {"path": str(f), "use_safetensors": False}, ValueError, "use_safetensors"),
    "dtype str": (lambda f: {"path": str(f), "dtype": "half"}, TypeError, "dtype"),
    "torch_dtype int": (lambda f: {"path": str(f), "torch_dtype": 16}, TypeError, "torch_dtype"),
}


# from_pretrained is called on a class, so a pipeline_class that is none has no from_pretrained case
LOADERS = [(case, how) for case in LOAD_CASES for how in ("load_pipeline", "from_pretrained") if (case, how) != ("pipeline_class str", "from_pretrained")]


@pytest.mark.parametrize(("case", "how"), LOADERS)
def test_bad_loading_inputs_get_one_line_naming_them(saved, case, how):
    kwargs, error, names = LOAD_CASES[case][0](saved), *LOAD_CASES[case][1:]
    if how == "from_pretrained":
        pipeline_class = kwargs.pop("pipeline_class", DiffusionImagePipeline)
        call = lambda: pipeline_class.from_pretrained(kwargs.pop("path"), **kwargs)
    else:
        call = lambda: load_pipeline(**kwargs)
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value)
    assert names in message and "\n" not in message, message


def test_a_path_object_loads(saved):
    assert isinstance(DiffusionImagePipeline.from_pretrained(saved), DiffusionImagePipeline)
    assert isinstance(load_pipeline(saved), DiffusionImagePipeline)
    assert not isinstance(load_pipeline(saved), (LatentDiffusionPipeline, VAEPipeline))
