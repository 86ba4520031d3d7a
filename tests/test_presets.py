"""Preset files (configs/*.yaml) are starting points outside this repository's layout (issue 19)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from .conftest import REPO

PRESETS = sorted((REPO / "configs").glob("**/*.yaml"))


def strings(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from strings(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from strings(value)
    elif isinstance(tree, str):
        yield tree


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_presets_name_no_development_paths(preset):
    for value in strings(yaml.safe_load(preset.read_text())):
        assert "../" not in value and "shared/" not in value, f"{preset.name}: {value!r}"


def test_a_preset_that_needs_data_names_the_key_to_set(tmp_path):
    result = subprocess.run([sys.executable, "-m", "saddlepoint", "train", "--config", str(REPO / "configs" /
                             "cifar10.yaml"), "--out", str(tmp_path / "run")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "data.root" in lines[0], result.stderr
