"""Fixtures shared across test files."""

from __future__ import annotations

import pytest

from hfgen.evaluation.feature_extractor import CACHE_ENV


@pytest.fixture(scope="session")
def extractor_cache(tmp_path_factory):
    """One feature-extractor cache per test session, shared by the evaluation and zoo tests (never the user's)."""
    folder = tmp_path_factory.mktemp("hfgen-feature-extractors")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="session")
def tiny_zoo(extractor_cache, tmp_path_factory):
    """`hfgen zoo --budget tiny` run once through the CLI: every registered family trained, saved and evaluated."""
    from hfgen.cli import main

    folder = tmp_path_factory.mktemp("tiny-zoo")
    assert main(["zoo", "--budget", "tiny", "--output_dir", str(folder), "--num_samples", "64"]) == 0
    return folder


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory):
    """A Hub-compatible server (olah + uploads, see hub_server.py) on 127.0.0.1, stopped with the module."""
    from hub_server import HubServer

    with HubServer(tmp_path_factory.mktemp("hub")) as server:
        yield server


@pytest.fixture(scope="module")
def hub_client(hub_server, extractor_cache):
    """A warm client process (hfgen + huggingface_hub imported with HF_ENDPOINT = the module's hub_server),
    sharing the session's feature-extractor cache."""
    from hub_server import HubClient

    client = HubClient(hub_server)
    yield client
    client.close()


RAN: dict[str, list[str]] = {"example_ran": [], "docstring_ran": []}
"""What tests/test_examples.py ran, from its reports' properties (so it adds up under pytest-xdist too)."""


def pytest_runtest_logreport(report):
    for name, value in report.user_properties:
        if name in RAN and report.when == "call":
            RAN[name].append(value)


def pytest_terminal_summary(terminalreporter):
    """How many examples of the README and docs ran, and which are marked not run (tests/test_examples.py)."""
    if any(RAN.values()):
        from markdown_examples import summary

        terminalreporter.write_line(summary(RAN["example_ran"], RAN["docstring_ran"]))
