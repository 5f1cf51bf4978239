"""The Hub, end to end against a local Hub-compatible server (olah + uploads, see hub_server.py): cards,
`hfgen push`, loading every family by repo id, and the errors for what cannot be loaded.

Clients that talk to the server run in subprocesses: `HF_ENDPOINT` must be set before `huggingface_hub` is
imported, and the test process itself stays offline.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from huggingface_hub import ModelCard, metadata_load
from safetensors.torch import load_file

from helpers import Unpickled, safetensors_weights, sample_from_hub, sample_tensors
from hub_server import TOKEN, HubClient, git, repo_path

from hfgen.cli import main
from hfgen.families import family_names, get_family
from hfgen.hub.cards import EVAL_RESULTS_FILE, update_card
from hfgen.hub.remote_code import export_remote_code
from hfgen.loading import load_pipeline
from hfgen.zoo.run import ZooArguments, training_runs
from hfgen.training.launch import train

pytestmark = pytest.mark.slow
FAMILIES = family_names()
TINY = ["--max_steps", "2", "--train_batch_size", "8", "--num_grid_images", "4", "--lr_warmup_steps", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """One tiny model per registered family (its `zoo["tiny"]` plan, after any model it needs first), trained once
    by `hfgen train`, which leaves the folder with its card."""
    root = tmp_path_factory.mktemp("trained")
    folders = {}
    for name in FAMILIES:
        folders[name] = root / name
        for family, argv in training_runs(ZooArguments(budget="tiny"), name, folders[name]):
            assert main(["train", family, *argv]) == 0
    return folders


def test_cards_render_and_load_back_with_eval_results(trained):
    for name, folder in trained.items():
        card = ModelCard.load(folder / "README.md")
        assert card.data.library_name in ("diffusers", "transformers")
        assert {"hfgen", name, "digits"} <= set(card.data.tags)
        assert card.data.pipeline_tag == "unconditional-image-generation"
        assert "![" in card.text and "(samples.png)" in card.text and (folder / "samples.png").is_file()
        assert "(loss_curve.png)" in card.text and (folder / "loss_curve.png").is_file()
        assert get_family(name).card_text.split(".")[0] in card.text
        assert card.data.eval_results is None  # training writes the card without metrics

        # numpy floats, as evaluation produces them: the card must still load (plain floats in the YAML)
        rng = np.random.default_rng(len(name))
        metrics = {key: np.float64(rng.uniform(0.1, 9)) for key in ("fid", "kid", "precision", "recall", "bits_per_dim")}
        results = {"model": str(folder), "pipeline": "x", "dataset": "digits", "num_samples": 64, "seed": 0,
                   "feature_extractor": {"dataset": "digits", "seed": 0, "test_accuracy": 0.97}, "metrics": metrics}
        update_card(folder, results)
        loaded = ModelCard.load(folder / "README.md")
        judged = {"fid", "kid", "precision", "recall"}  # saved before judges had names: the classifier's
        assert {r.metric_type: r.metric_value for r in loaded.data.eval_results} == {
            f"{k}-classifier" if k in judged else k: float(v) for k, v in metrics.items()
        }
        assert all(r.dataset_split == "test" and r.metric_args["num_samples"] == 64 for r in loaded.data.eval_results)
        assert metadata_load(folder / "README.md")["model-index"][0]["results"]
        assert f"{float(metrics['fid']):.4g}" in loaded.text
        (folder / EVAL_RESULTS_FILE).unlink()


def test_push_then_load_by_repo_id_gives_identical_samples(trained, hub_server, hub_client, tmp_path):
    for name, folder in trained.items():
        before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.name != "README.md"}
        code, _, stderr = hub_client.cli("push", folder, f"hfgen-test/{name}")
        assert code == 0, stderr[-3000:]
        assert before == {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.name != "README.md"}
        served = repo_path(hub_server.root, "model", f"hfgen-test/{name}")
        files = git(served, "ls-tree", "-r", "--name-only", "main").split()
        assert {"README.md", "model_index.json", "samples.png", "loss_curve.png"} <= set(files)
        assert not [f for f in files if f.startswith(("logs/", "checkpoints/")) or f.endswith((".jsonl", ".bin", ".pkl"))]
        # the card came in the same commit as the weights (after create_repo's): no generic README in between
        assert git(served, "rev-list", "--count", "main") == "2"
        assert f"hfgen-test/{name}" in git(served, "show", "main:README.md")

        out = tmp_path / f"{name}.safetensors"
        assert sample_from_hub(hub_client, name, f"hfgen-test/{name}", out) == type(load_pipeline(str(folder))).__name__
        # The same images; the client runs single-threaded, so float sums may differ in the last bits.
        torch.testing.assert_close(load_file(out)["images"], sample_tensors(load_pipeline(str(folder)), name), rtol=0, atol=1e-5, msg=name)
        # the family's own class, through diffusers' download (which refuses unknown component libraries)
        code, stdout, stderr = hub_client.run(
            f"from hfgen.families import get_family\nprint(type(get_family({name!r}).pipelines[0].from_pretrained('hfgen-test/{name}')).__name__)"
        )
        assert code == 0 and stdout.strip() == get_family(name).pipelines[0].__name__, stderr[-3000:]


PLAIN_DIFFUSERS_SAMPLE = """
import torch
from diffusers import DiffusionPipeline
from safetensors.torch import save_file
import transformers
pipe = DiffusionPipeline.from_pretrained({repo!r}, trust_remote_code=True)
if hasattr(pipe, "use_scheduler"):  # diffusion: the same 2 DDIM steps as sample_tensors
    pipe.use_scheduler("ddim")
options = {{"num_inference_steps": 2}} if hasattr(pipe, "use_scheduler") else {{}}
images = pipe(batch_size=2, generator=torch.Generator().manual_seed(0), output_type="pt", **options).images
save_file({{"images": images.contiguous()}}, {out!r})
for component, auto_class in {components!r}.items():  # transformers' Auto classes, from the same repo code
    model = getattr(transformers, auto_class).from_pretrained({repo!r}, subfolder=component, trust_remote_code=True)
    save_file({{k: v.clone().contiguous() for k, v in model.state_dict().items()}}, {out!r} + "." + component)
print(type(pipe).__module__, type(pipe).__name__)
"""


def test_pushed_repos_load_without_hfgen(trained, hub_server, hub_client, tmp_path):
    """Plain diffusers + transformers, where hfgen cannot be imported: every family from its repo in one process,
    the same samples as hfgen's classes, and the custom components through `AutoModel` too."""
    for name, folder in trained.items():
        assert hub_client.cli("push", folder, f"hfgen-test/plain-{name}")[0] == 0
    plain, auto_classes = HubClient(hub_server), set()
    try:
        code, stdout, _ = plain.run("import sys\nsys.modules['hfgen'] = None\ntry:\n    import hfgen\nexcept ImportError:\n    print('no hfgen')")
        assert stdout.strip() == "no hfgen"
        code, _, stderr = plain.run("from diffusers import DiffusionPipeline\nDiffusionPipeline.from_pretrained('hfgen-test/plain-gan')")
        assert code == 1 and "trust_remote_code=True" in stderr
        for name, folder in trained.items():
            pipe = load_pipeline(str(folder))
            exported = export_remote_code(folder, tmp_path / name)
            components = {}  # component -> the Auto class its exported config maps to its own class
            for component, (module, class_name) in [(c, s) for c, s in exported.items() if isinstance(s, list) and s[0].startswith("modeling_hfgen")]:
                auto_map = json.loads((tmp_path / name / component / "config.json").read_text())["auto_map"]
                components[component] = next(auto for auto, reference in auto_map.items() if reference == f"{module}.{class_name}")
            out = str(tmp_path / f"{name}.safetensors")
            auto_classes |= set(components.values())
            code, stdout, stderr = plain.run(PLAIN_DIFFUSERS_SAMPLE.format(repo=f"hfgen-test/plain-{name}", out=out, components=components))
            assert code == 0, stderr[-3000:]
            assert stdout.split() == [stdout.split()[0], type(pipe).__name__] and stdout.startswith("diffusers_modules."), stdout
            torch.testing.assert_close(load_file(out)["images"], sample_tensors(pipe, name), rtol=0, atol=1e-5, msg=name)
            for component in components:
                weights = load_file(f"{out}.{component}")
                expected = getattr(pipe, component).state_dict()
                assert weights.keys() == expected.keys(), component
                for key, value in weights.items():
                    torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=f"{name}/{component}/{key}")
        assert auto_classes == {"AutoModel", "AutoModelForImageClassification", "AutoModelForCausalLM"}
        # `custom_pipeline=` a local file: hfgen's folder as saved (diffusers' UNet and scheduler), the exported class
        pipeline_file = tmp_path / "diffusion" / f"{export_remote_code(trained['diffusion'], tmp_path / 'diffusion')['_class_name'][0]}.py"
        out = str(tmp_path / "custom.safetensors")
        code, _, stderr = plain.run(
            PLAIN_DIFFUSERS_SAMPLE.format(repo=str(trained["diffusion"]), out=out, components={}).replace(
                "trust_remote_code=True)", f"trust_remote_code=True, custom_pipeline={str(pipeline_file)!r})", 1)
        )
        assert code == 0, stderr[-3000:]
        torch.testing.assert_close(load_file(out)["images"], sample_tensors(load_pipeline(str(trained["diffusion"])), "diffusion"), rtol=0, atol=1e-5)
        for name in trained:  # each card's own "without hfgen" snippet runs as written (one image instead of 16)
            card = git(repo_path(hub_server.root, "model", f"hfgen-test/plain-{name}"), "show", "main:README.md")
            snippet = card.split("Without hfgen", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
            code, _, stderr = plain.run(snippet.replace("batch_size=16", "batch_size=1") + "\nassert len(images) == 1")
            assert code == 0, f"{name}: {stderr[-3000:]}"
    finally:
        plain.close()


def test_family_class_and_cli_load_a_repo_id(trained, hub_client, tmp_path):
    assert hub_client.cli("push", trained["gan"], "hfgen-test/gan-cli")[0] == 0
    code, stdout, stderr = hub_client.run(
        "from hfgen import GANPipeline\nprint(type(GANPipeline.from_pretrained('hfgen-test/gan-cli').gan_generator).__name__)"
    )
    assert code == 0 and stdout.strip() == "GANGenerator", stderr[-3000:]
    code, stdout, stderr = hub_client.cli("sample", "hfgen-test/gan-cli", "--num_images", "4", "--output", tmp_path / "grid.png")
    assert code == 0 and (tmp_path / "grid.png").is_file(), stderr[-3000:]
    # the dataset comes from the pushed training_args.json
    code, stdout, stderr = hub_client.cli("evaluate", "hfgen-test/gan-cli", "--num_samples", "16", "--batch_size", "16",
                                          "--output", tmp_path / "results.json")
    assert code == 0, stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["dataset"] == "digits" and results["pipeline"] == "GANPipeline" and results["metrics"]["fid"] > 0


def test_revision_branch_and_commit(trained, hub_server, hub_client, tmp_path):
    repo = "hfgen-test/two-branches"
    assert hub_client.cli("push", trained["vae"], repo)[0] == 0
    code, _, stderr = hub_client.cli("push", trained["gan"], repo, "--revision", "dev", "--commit_message", "a GAN on dev")
    assert code == 0, stderr[-3000:]
    served = repo_path(hub_server.root, "model", repo)
    assert git(served, "log", "-1", "--format=%s", "dev") == "a GAN on dev"
    # model_index.json is read at the revision: main holds a VAE, dev a GAN
    assert sample_from_hub(hub_client, "gan", repo, tmp_path / "dev.safetensors", "dev") == "GANPipeline"
    main_commit = git(served, "rev-parse", "main")
    assert sample_from_hub(hub_client, "vae", repo, tmp_path / "main.safetensors", main_commit) == "VAEPipeline"
    # and from the command line
    code, stdout, stderr = hub_client.cli("sample", repo, "--revision", "dev", "--num_images", "4", "--output", tmp_path / "dev.png")
    assert code == 0 and (tmp_path / "dev.png").is_file(), stderr[-3000:]
    code, _, stderr = hub_client.cli("evaluate", repo, "--revision", "dev", "--num_samples", "16", "--batch_size", "16",
                                     "--likelihood", "false", "--output", tmp_path / "dev.json")
    assert code == 0 and json.loads((tmp_path / "dev.json").read_text())["pipeline"] == "GANPipeline", stderr[-3000:]
    code, _, stderr = hub_client.cli("sample", trained["gan"], "--revision", "dev")
    assert code == 2 and "applies to Hub repo ids" in stderr and "Traceback" not in stderr, stderr[-3000:]


def test_training_resumes_from_a_checkpoint_pushed_to_the_hub(hub_server, hub_client, tmp_path):
    folder, repo = tmp_path / "vae", "hfgen-test/resumable"
    (_, argv), = training_runs(ZooArguments(budget="tiny"), "vae", folder)
    argv[argv.index("--checkpointing_steps") + 1] = "1"
    train("vae", argv)
    code, _, stderr = hub_client.cli("push", folder, repo, "--include_checkpoints")
    assert code == 0, stderr[-3000:]
    served = repo_path(hub_server.root, "model", repo)
    assert not [f for f in git(served, "ls-tree", "-r", "--name-only", "main").split() if f.startswith("checkpoints/")]
    state = git(served, "ls-tree", "-r", "--name-only", "checkpoints").split()
    assert {"checkpoints/checkpoint-1/hfgen_state.json", "checkpoints/checkpoint-1/training_state_0.pt",
            "checkpoints/checkpoint-1/optimizer.bin"} <= set(state), state
    # the same 2 more steps, resumed from the Hub and from the local checkpoint: the same weights
    (_, argv), = training_runs(ZooArguments(budget="tiny"), "vae", folder)
    argv = [a for a in argv if a != "--overwrite_output_dir"]
    argv[argv.index("--max_steps") + 1] = "3"
    resumed = {}
    for source, checkpoint in [("hub", repo), ("local", folder / "checkpoints" / "checkpoint-1")]:
        resumed[source] = tmp_path / source
        argv[argv.index("--output_dir") + 1] = str(resumed[source])
        code, _, stderr = hub_client.cli("train", "vae", *argv, "--resume_from_checkpoint", checkpoint)
        assert code == 0, stderr[-3000:]
        assert json.loads((resumed[source] / "run_info.json").read_text())["global_step"] == 3
    expected, from_hub = safetensors_weights(resumed["local"]), safetensors_weights(resumed["hub"])
    assert expected.keys() == from_hub.keys() and expected
    for key in expected:
        torch.testing.assert_close(from_hub[key], expected[key], rtol=0, atol=0, msg=key)
    assert hub_client.cli("push", folder, "hfgen-test/no-state")[0] == 0  # pushed without --include_checkpoints
    code, _, stderr = hub_client.cli("train", "vae", *argv, "--resume_from_checkpoint", "hfgen-test/no-state")
    assert code == 2 and "no revision 'checkpoints'" in stderr, stderr[-3000:]


ERRORS = """
from hfgen.loading import load_pipeline
for repo, revision in [("hfgen-test/no-such-repo", None), ("hfgen-test/vae-errors", "no-such-branch"),
                       ("hfgen-test/pickles", None), ("hfgen-test/incomplete", None), ("hfgen-test/other-family", None),
                       ("hfgen-test/list-class-name", None)]:
    try:
        print("loaded", type(load_pipeline(repo, revision=revision)).__name__)
    except (OSError, ValueError) as error:
        print("error", error)
"""


def test_errors_name_what_was_looked_for_and_never_unpickle(trained, hub_server, hub_client, tmp_path):
    vae = trained["vae"]
    files = {str(p.relative_to(vae)): p.read_bytes() for p in vae.rglob("*") if p.is_file() and "logs" not in p.parts}
    index = json.loads(files["model_index.json"])
    hub_server.create_repo("hfgen-test/vae-errors", files)
    marker = tmp_path / "unpickled"
    hub_server.create_repo("hfgen-test/pickles", {
        "model_index.json": files["model_index.json"], "vae/config.json": files["vae/config.json"],
        # padded past 150 bytes: olah's tree listing decodes 120-150 byte blobs as LFS pointers (UTF-8) and crashes
        "vae/diffusion_pytorch_model.bin": pickle.dumps([Unpickled(marker), b"\0" * 256]),
    })
    hub_server.create_repo("hfgen-test/incomplete", {"model_index.json": files["model_index.json"]})
    hub_server.create_repo("hfgen-test/other-family", {"model_index.json": json.dumps({**index, "_class_name": "StableDiffusionPipeline"}).encode()})
    hub_server.create_repo("hfgen-test/list-class-name", {**files, "model_index.json": json.dumps({**index, "_class_name": ["pipeline_vae", "VAEPipeline"]}).encode()})

    code, stdout, stderr = hub_client.run(ERRORS)
    assert code == 0, stderr[-3000:]
    lines = stdout.strip().splitlines()
    assert len(lines) == 6, stdout  # one line per case
    assert lines[0].startswith("error No Hub repo 'hfgen-test/no-such-repo'") and "model_index.json" in lines[0]
    assert lines[1].startswith("error Hub repo 'hfgen-test/vae-errors' has no revision 'no-such-branch'")
    assert lines[2].startswith("error") and "only pickled weights" in lines[2] and "diffusion_pytorch_model.bin" in lines[2]
    assert lines[3].startswith("error Could not load the weights") and "the vae/ folder" in lines[3] and "is missing" in lines[3]
    assert lines[4].startswith("error hfgen provides no 'StableDiffusionPipeline' pipeline")
    assert lines[5] == "loaded VAEPipeline"
    assert not marker.exists(), "a downloaded pickle was unpickled"


def test_token_never_leaks_and_push_errors_are_one_line(trained, hub_server, hub_client, tmp_path):
    folder = trained["diffusion"]
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    for token, message in {None: "No Hub token", "hf_wrong_token": "the Hub rejected the token"}.items():
        code, _, stderr = hub_client.cli("push", folder, "hfgen-test/diffusion-denied", token=token)
        assert code == 2 and message in stderr and "Traceback" not in stderr, stderr[-3000:]
        assert stderr.strip().splitlines()[-1].startswith("hfgen: error: Could not push") or "No Hub token" in stderr
    code, _, stderr = hub_client.cli("push", folder, "someone-else/diffusion")
    assert code == 2 and "you cannot write to 'someone-else/diffusion'" in stderr, stderr[-3000:]
    assert before == {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}, "a failed push changed the folder"
    assert not repo_path(hub_server.root, "model", "hfgen-test/diffusion-denied").exists()

    # train --push_to_hub: no token fails before training; with one, the token appears in no output, log,
    # local or pushed file
    out = tmp_path / "pushed-by-train"
    code, _, stderr = hub_client.cli("train", "vae", *TINY, "--output_dir", out, "--push_to_hub", "--hub_model_id", "hfgen-test/x", token=None)
    assert code == 2 and "No Hub token" in stderr and not out.exists(), stderr[-3000:]
    code, stdout, stderr = hub_client.cli("train", "vae", *get_family("vae").zoo["tiny"].flags, *TINY,
                                          "--output_dir", out, "--push_to_hub", "--hub_model_id", "hfgen-test/vae-trained")
    assert code == 0, stderr[-3000:]
    served = repo_path(hub_server.root, "model", "hfgen-test/vae-trained")
    pushed = git(served, "ls-tree", "-r", "--name-only", "main").split()
    assert "vae/model.safetensors" in pushed and "README.md" in pushed
    assert "hfgen-test/vae-trained" in git(served, "show", "main:README.md")
    texts = [stdout, stderr, (hub_server.root / "server.log").read_text()]
    texts += [git(served, "show", f"main:{f}") for f in pushed if not f.endswith((".png", ".safetensors"))]
    texts += [p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()]
    assert not [t for t in texts if TOKEN in t]


def png(seed: int) -> bytes:
    """A 16x16 grey noise PNG (over 150 bytes: olah misreads smaller binary blobs, see hub_server.py)."""
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(seed).random((16, 16)) * 255).astype("uint8")).save(buffer, "PNG")
    return buffer.getvalue()


def test_train_on_an_image_dataset_repo(hub_server, hub_client, tmp_path):
    images = {f"{split}/{label}/{i}.png": png(i + 100 * (split == "test")) for split in ("train", "test") for label in "ab" for i in range(4)}
    hub_server.create_repo("hfgen-test/images", images, repo_type="dataset")
    out = tmp_path / "vae-on-hub-images"
    code, _, stderr = hub_client.cli("train", "vae", "--dataset", "hfgen-test/images", *get_family("vae").zoo["tiny"].flags, *TINY,
                                     "--output_dir", out)
    assert code == 0, stderr[-3000:]
    arguments = json.loads((out / "training_args.json").read_text())
    assert arguments["data"]["dataset"] == "hfgen-test/images"
    assert json.loads((out / "vae" / "config.json").read_text())["image_size"] == 16
    assert "hfgen-test/images" in ModelCard.load(out / "README.md").data.datasets
