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
