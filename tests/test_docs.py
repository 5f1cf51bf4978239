"""The docs site's sources: the API reference covers every public name, and the README's links lead somewhere.
(`make docs` builds the site with every warning an error - a broken link or anchor inside docs/, a docstring
mkdocstrings cannot read; tests/test_examples.py runs the examples.)"""

from __future__ import annotations

import re

import hfgen
from markdown_examples import ROOT, reference_entries


def test_the_api_reference_documents_every_public_name():
    documented = {path.rsplit(".", 1)[1]: value for path, value in reference_entries()}
    public = [name for name in hfgen.__all__ if name != "__version__"]
    assert {name: getattr(hfgen, name) for name in public} == {name: documented.get(name) for name in public}


def test_the_readme_links_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    targets = [target.split("#")[0] for target in re.findall(r"\]\(([^)#][^)]*)\)", readme) if "://" not in target]
    assert targets and [target for target in targets if not (ROOT / target).exists()] == []
