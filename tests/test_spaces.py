"""The Gradio Spaces end to end: each `spaces/<name>/app.py` served on 127.0.0.1 with tiny models trained here,
every endpoint called through `gradio_client`, and every page driven in a real browser (Debian's chromium through
Playwright): controls present, a click that draws an image, a bad input that shows its error.

Screenshots land in `test-artifacts/spaces/`; with HFGEN_SCREENSHOTS=1 they also replace `docs/screenshots/`
(the README's). HFGEN_SPACES_ZOO=<folder of `hfgen zoo`> serves those models instead of training tiny ones.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hfgen.families import family_names
from gradio_client import Client, handle_file
from huggingface_hub import SpaceCard
from PIL import Image

from helpers import REPO_ROOT, free_port, run_hfgen, subprocess_env
from hfgen.cli import main
from hfgen.demo import MODEL_ENV, demo_names, launch
from hfgen.widgets import DISPLAY_SIDE

SPACES = ("diffusion", "latent-diffusion", "vae", "gan", "autoregressive", "zoo")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "spaces"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TEXT = ["--dataset", "python-stdlib", "--max_chars", "50000", "--vocab_size", "300", "--block_size", "32",
        "--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2"]


def wait_until_serving(url: str, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def models(request, tmp_path_factory) -> dict[str, Path]:
    """Space -> model: the session's tiny zoo (or HFGEN_SPACES_ZOO's folder), and a 2-step text GPT."""
    zoo = Path(os.environ.get("HFGEN_SPACES_ZOO") or request.getfixturevalue("tiny_zoo"))
    text = tmp_path_factory.mktemp("spaces-text")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HFGEN_CACHE", str(tmp_path_factory.mktemp("spaces-text-cache")))
        assert main(["train", "autoregressive", *TEXT, "--output_dir", str(text), "--max_steps", "2", "--train_batch_size", "8"]) == 0
    return {name: zoo / "models" / name for name in SPACES[:-1]} | {"zoo": zoo, "text": text}


@pytest.fixture(scope="module")
def servers(models):
    """Space -> URL: each Space's own app.py run with $HFGEN_MODEL, served from this process; `text` is the
    autoregressive Space on a text model."""
    demos, urls = [], {}
    with pytest.MonkeyPatch.context() as patch:
        for name in (*SPACES, "text"):
            patch.setenv(MODEL_ENV, str(models[name]))
            app = REPO_ROOT / "spaces" / ("autoregressive" if name == "text" else name) / "app.py"
            demo = runpy.run_path(str(app))["demo"]  # not __main__: builds the demo without serving it
            port = free_port()
            launch(demo, port=port, prevent_thread_lock=True, quiet=True)
            demos.append(demo)
            urls[name] = f"http://127.0.0.1:{port}/"
    yield urls
    for demo in demos:
        demo.close()


@pytest.fixture(scope="module")
def clients(servers) -> dict[str, Client]:
    return {name: Client(url, verbose=False) for name, url in servers.items()}


def image(path: str) -> Image.Image:
    """An output file: it must be a PNG (Gradio's WebP default blurs 8x8 pixels) at least DISPLAY_SIDE wide or high."""
    picture = Image.open(path)
    assert picture.format == "PNG", picture.format
    assert max(picture.size) >= DISPLAY_SIDE, picture.size
    return picture


def frames(gallery: list[dict]) -> list[Image.Image]:
    return [image(item["image"]) for item in gallery]


def assert_refused(client: Client, message: str, *args, api_name: str) -> None:
    """The request fails with `message` shown to the user (a gr.Error), not a generic error or a traceback."""
    with pytest.raises(Exception) as refused:
        client.predict(*args, api_name=api_name)
    assert message in str(refused.value) and "Traceback" not in str(refused.value), str(refused.value)


def test_every_space_folder_is_deployable_as_it_is():
    assert set(demo_names()) == set(SPACES)
    for name in SPACES:
        folder = REPO_ROOT / "spaces" / name
        card = SpaceCard.load(folder / "README.md").data  # raises on broken YAML front matter
        import gradio

        assert (card.sdk, card.sdk_version, card.app_file) == ("gradio", gradio.__version__, "app.py"), name
        assert card.title and card.models and len(card.get("short_description", "")) <= 60, name
        assert "hfgen" in (folder / "requirements.txt").read_text(), name
        assert f'build_demo("{name}", space_model(__file__))' in (folder / "app.py").read_text(), name


@pytest.mark.parametrize("space", ["diffusion", "latent-diffusion"])
def test_diffusion_space(clients, space):
    client = clients[space]
    grid = image(client.predict(0, 4, "ddim", 10, -1, 3.0, api_name="/sample"))
    assert grid.size[0] == grid.size[1]  # 4 images: a 2x2 grid
    forward, reverse = client.predict(0, 6, 1, "dpmsolver", 10, -1, 3.0, api_name="/trajectory")
    assert len(frames(forward)) == 6 and [item["caption"] for item in forward] == ["data", "t=200", "t=400", "t=599", "t=799", "t=999"]
    assert len(frames(reverse)) == 6 and reverse[-1]["caption"].startswith("step 10/10")
    assert_refused(client, "less than minimum value 1", 0, 4, "ddim", 0, -1, 3.0, api_name="/sample")
    assert_refused(client, "not in the list of choices", 0, 4, "euler", 10, -1, 3.0, api_name="/sample")
    image(client.predict(0, 1, "ddpm", 5, -1, 3.0, api_name="/sample"))  # and the next good request succeeds


def test_vae_space(clients, tmp_path):
    client = clients["vae"]
    image(client.predict(1, 16, api_name="/sample"))
    digit = tmp_path / "digit.png"
    Image.new("L", (8, 8), 255).save(digit)
    pair = image(client.predict(handle_file(str(digit)), api_name="/reconstruct"))
    assert pair.width > pair.height  # original | reconstruction
    walk = client.predict(handle_file(str(digit)), handle_file(str(digit)), 5, api_name="/interpolate")
    assert len(frames(walk)) == 5
    codes = client.predict(api_name="/latent_map")
    assert len(codes["data"]) == 300 and len({row[2] for row in codes["data"]}) == 10  # every digit class
    assert_refused(client, "Upload or draw an image first", None, api_name="/reconstruct")
    wide = tmp_path / "wide.png"
    Image.new("L", (4000, 8)).save(wide)
    assert_refused(client, "at most 2048 pixels a side", handle_file(str(wide)), api_name="/reconstruct")
    assert_refused(client, "greater than maximum value 16", handle_file(str(digit)), handle_file(str(digit)), 99, api_name="/interpolate")
    image(client.predict(handle_file(str(digit)), api_name="/reconstruct"))


def test_gan_space(clients):
    client = clients["gan"]
    image(client.predict(3, 9, -1, 0.7, api_name="/sample"))
    assert len(frames(client.predict(1, 2, 7, -1, 1.0, api_name="/walk"))) == 7
    pair, verdict = client.predict(5, 0, api_name="/discriminate")
    image(pair)
    scores = {item["label"]: item["confidence"] for item in verdict["confidences"]}
    assert set(scores) == {"real test image #5", "generated (seed 0)"} and all(0 < p < 1 for p in scores.values())
    # Concurrent identical requests: Gradio's cache of returned PIL images rewrites one file per result while others
    # download it (13 of 64 such requests failed before the Spaces returned PNG files written once).
    jobs = [client.submit(0, 16, -1, 1.0, api_name="/sample") for _ in range(12)]
    assert len({image(job.result(timeout=120)).tobytes() for job in jobs}) == 1
    assert_refused(client, "less than minimum value 0.05", 3, 9, -1, 0.0, api_name="/sample")
    assert_refused(client, "greater than maximum value 64", 3, 1000, -1, 1.0, api_name="/sample")
    image(client.predict(3, 1, -1, 1.0, api_name="/sample"))


def test_autoregressive_pixel_space_completes_as_it_goes(clients):
    client = clients["autoregressive"]
    updates = list(client.submit(0, 4, 0, 1.0, api_name="/complete"))
    assert len(updates) > 2  # the start, frames while sampling, the end
    final = image(updates[-1])  # original | completion, 8x8 cells with a 2-pixel border
    cell, border = final.width // 2, 2
    top_half = (border, border, cell - border, border + (cell - 2 * border) // 2)
    original, completed = final.crop(top_half), final.crop((top_half[0] + cell, *top_half[1:2], top_half[2] + cell, top_half[3]))
    assert original.tobytes() == completed.tobytes()  # the 4 known rows are kept
    assert image(updates[0]).tobytes() != final.tobytes()  # and the rest was drawn while we watched
    image(client.predict(0, 4, 1.0, api_name="/sample"))
    context, bars = client.predict(3, 4, api_name="/next_pixel")
    image(context)
    probabilities = [row[1] for row in bars["data"]]
    assert len(probabilities) == 10 and probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6
    assert_refused(client, "greater than maximum value 7", 0, 8, api_name="/next_pixel")
    assert_refused(client, "less than minimum value 0.05", 0, 4, 0, 0.0, api_name="/complete")
    image(client.predict(0, 2, api_name="/next_pixel")[0])


def test_autoregressive_text_space_streams(clients):
    client = clients["text"]
    updates = list(client.submit("def ", 0.8, 0.95, 50, 16, 0, api_name="/generate"))
    assert len(updates) > 1 and updates[-1].startswith("def ") and len(updates[-1]) > len("def ")
    bars = client.predict("import ", api_name="/next_token")
    assert len(bars["data"]) == 10 and all(0 <= row[1] <= 1 for row in bars["data"])
    assert_refused(client, "context window of 32 tokens", "x = 1\n" * 30, 0.8, 0.95, 50, 16, 0, api_name="/generate")
    assert_refused(client, "less than minimum value 0.05", "def ", 0.0, 0.95, 50, 16, 0, api_name="/generate")
    assert list(client.submit("", 1.0, 1.0, 0, 8, 1, api_name="/generate"))


def test_zoo_space_times_every_family_next_to_the_report(clients):
    *panels, table = clients["zoo"].predict(0, 4, api_name="/compare")
    assert len(panels) == len(family_names()) and all(image(panel) for panel in panels)
    rows = {row[0]: dict(zip(table["headers"], row)) for row in table["data"]}
    assert set(rows) == set(family_names())
    assert all(float(row["ms/image (now)"]) > 0 and row["FID∞ ↓"] != "n/a" for row in rows.values())
    assert rows["vae"]["bits/dim ↓"] != "n/a" and rows["gan"]["bits/dim ↓"] == "n/a"


def test_hfgen_demo_serves_a_space_and_refuses_unknown_ones(models, tmp_path):
    assert "No demo called 'nope'" in run_hfgen("demo", "nope", check=False).stderr
    port, log = free_port(), tmp_path / "demo.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "hfgen", "demo", "gan", "--model", str(models["gan"]), "--port", str(port)],
        env=subprocess_env(), stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", log)
        image(Client(f"http://127.0.0.1:{port}/", verbose=False).predict(0, 4, -1, 1.0, api_name="/sample"))
    finally:
        server.terminate()
        server.wait(timeout=30)


FRESH_VENV_HIDES = ("hfgen", "__editable__", "_hfgen", "hfgen-")
"""Entries of this environment's site-packages a "fresh" virtualenv must not see: the hfgen installed here."""


def fresh_virtualenv(folder: Path) -> Path:
    """A new virtualenv that sees this environment's packages (torch, gradio, ... - nothing is downloaded) but not
    its hfgen; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)  # pip: this one's
    site_packages = Path(next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()))
    shadow = folder / "installed-here"
    shadow.mkdir()
    for entry in site_packages.iterdir():
        if not entry.name.startswith(FRESH_VENV_HIDES) and entry.suffix != ".pth":
            (shadow / entry.name).symlink_to(entry)
    (next((folder / "lib").glob("python3*")) / "site-packages" / "installed-here.pth").write_text(f"{shadow}\n")
    return folder / "bin" / "python"


@pytest.mark.slow
def test_push_space_deploys_a_space_that_installs_and_starts_in_a_fresh_virtualenv(models, hub_server, hub_client, tmp_path):
    assert hub_client.cli("push", models["vae"], "hfgen-test/space-vae")[0] == 0
    code, stdout, stderr = hub_client.cli("push-space", "vae", "hfgen-test/vae-demo", "--model", "hfgen-test/space-vae")
    assert code == 0, stderr[-3000:]
    space = tmp_path / "space"
    code, _, stderr = hub_client.run(
        f"from huggingface_hub import snapshot_download\nsnapshot_download('hfgen-test/vae-demo', repo_type='space', local_dir={str(space)!r})"
    )
    assert code == 0, stderr[-3000:]
    assert SpaceCard.load(space / "README.md").data.models == ["hfgen-test/space-vae"]
    wheel = next(space.glob("hfgen-*.whl"))
    assert f"./{wheel.name}" in (space / "requirements.txt").read_text().splitlines()

    python = fresh_virtualenv(tmp_path / "venv")
    env = {**subprocess_env(), **hub_server.client_env(), "GRADIO_SERVER_NAME": "127.0.0.1"}
    env.pop(MODEL_ENV, None)  # the model comes from the Space card, as on the Hub
    env.pop("PYTHONPATH", None)  # and hfgen from the wheel only
    imports = subprocess.run([python, "-c", "import hfgen"], capture_output=True, cwd=tmp_path, env=env)
    assert imports.returncode != 0  # nothing of hfgen yet
    # as Spaces do: pip install -r requirements.txt in the Space's folder (offline: all but hfgen is there already)
    installed = subprocess.run([python, "-m", "pip", "install", "--no-index", "-q", "-r", "requirements.txt"],
                               cwd=space, capture_output=True, text=True, env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    where = subprocess.run([python, "-c", "import hfgen; print(hfgen.__file__)"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(tmp_path / "venv")), where

    port, log = free_port(), tmp_path / "space.log"
    app = subprocess.Popen([python, "app.py"], cwd=space, env={**env, "GRADIO_SERVER_PORT": str(port)},
                           stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", log)
        image(Client(f"http://127.0.0.1:{port}/", verbose=False).predict(1, 4, api_name="/sample"))
    finally:
        app.terminate()
        app.wait(timeout=30)


# A real browser.

BROWSER_CHECKS = {
    # Space: (button that generates, labels of controls that must be there, outputs that appear)
    "diffusion": ("Generate", ["seed", "images", "sampler", "denoising steps"], 1),
    "latent-diffusion": ("Generate", ["seed", "images", "sampler", "denoising steps"], 1),
    "vae": ("Generate", ["seed", "images"], 1),
    "gan": ("Generate", ["seed", "images", "truncation (1 = none)"], 1),
    "autoregressive": ("Complete", ["real test image #", "known top rows", "seed", "temperature"], 1),
    "text": ("Generate", ["prompt", "temperature", "top-p", "seed"], 0),
    "zoo": ("Sample every family", ["seed", "images per family"], 4),
}


SECOND_VIEWS = {
    # Space: (tab, button, output images that appear) - the view the Space exists to teach, screenshot too.
    "diffusion": ("Trajectory", "Noise and denoise", 16),
    "latent-diffusion": ("Trajectory", "Noise and denoise", 16),
}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium) - the browser tests need it.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.mark.parametrize("space", list(BROWSER_CHECKS))
def test_space_in_a_real_browser(space, servers, browser):
    button_name, controls, images = BROWSER_CHECKS[space]
    page = browser.new_page(viewport={"width": 1200, "height": 820})
    page.goto(servers[space])
    button = page.get_by_role("button", name=button_name, exact=True)
    button.wait_for(timeout=60_000)
    for label in controls:
        assert page.get_by_label(label).first.is_visible(), label
    button.click()
    if images:
        outputs = page.locator("img[src*='/gradio_api/file=']")
        outputs.nth(images - 1).wait_for(timeout=90_000)
        page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30_000)
    else:
        page.wait_for_function(
            "() => [...document.querySelectorAll('textarea')].some(t => t.value.length > 'def '.length)", timeout=90_000
        )
    page.wait_for_timeout(500)  # let the last frame of a stream settle
    save_screenshot(page, space)

    page.get_by_label("seed", exact=True).first.fill("-1")
    button.click()
    page.get_by_text("Value -1 is less than minimum value 0.").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / f"{space}-error.png"), full_page=True)
    if space in SECOND_VIEWS:
        tab, button_name, images = SECOND_VIEWS[space]
        page.reload()
        page.get_by_role("tab", name=tab).click()
        page.get_by_role("button", name=button_name, exact=True).click()
        page.locator("img[src*='/gradio_api/file=']").nth(images - 1).wait_for(timeout=90_000)
        page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30_000)
        save_screenshot(page, f"{space}-{tab.lower()}")
    page.close()


def save_screenshot(page, name: str) -> None:
    """A full-page PNG in the test artifacts, and in docs/screenshots/ with HFGEN_SCREENSHOTS=1."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("HFGEN_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOTS / f"{name}.png")


def test_a_bug_reaches_the_user_as_one_short_line():
    import gradio as gr

    from hfgen.widgets import user_errors

    @user_errors
    def broken(value: int) -> int:
        return {}[value]  # a bug, not bad input

    @user_errors
    def refusing(value: int):
        yield value
        raise ValueError(f"value must be small, got {value}.")

    with pytest.raises(gr.Error) as bug:
        broken(3)
    assert bug.value.message.startswith("Internal error (KeyError); the server is still running")
    assert bug.value.__cause__ is None  # `from None`: no chained traceback either
    stream = refusing(7)
    assert next(stream) == 7
    with pytest.raises(gr.Error) as refused:
        next(stream)
    assert refused.value.message == "value must be small, got 7."
