"""Every command the README and docs/*.md show, run as a user would (issue 19).

Shell commands are the lines of fenced code blocks that start with ``saddlepoint `` or ``python `` (with
``\\`` continuations joined). Each document's commands run in order in one scratch directory (a later
command may read an earlier one's run directory), with ``configs/`` and ``benchmarks/`` linked in. Long
settings are shortened by :data:`SHORTEN`, applied the same way to every command. A command whose comment
starts with the visible words ``# illustrative`` is not run; it is reported as skipped with that reason.
Every ``python`` code block of the README runs too, in a fresh interpreter.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ILLUSTRATIVE = "# illustrative"
FENCE = re.compile(r"^```(\w*)\s*$")
DEFAULT_STEPS = 20

# The one allow-list of shortenings, applied to every command alike: (what, pattern, replacement).
SHORTEN: list[tuple[str, re.Pattern[str], str]] = [
    ("train.steps=N -> N // 50 (at least 10)", re.compile(r"train\.steps=(\d+)"), "steps"),
    ("--seeds N -> --seeds 1", re.compile(r"--seeds \d+"), "--seeds 1"),
    ("--workers K -> --workers 1", re.compile(r"--workers \d+"), "--workers 1"),
]
RUNS_STEPS = ("train", "sweep")  # commands that get --set train.steps=20 when they name no step count


@dataclass(frozen=True)
class Command:
    document: str
    line: int
    text: str

    @property
    def illustrative(self) -> bool:
        return ILLUSTRATIVE in self.text

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def code_blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """(language, first line number, lines) of every fenced block in a Markdown file."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line.strip())
        if match and language is None:
            language, start, lines = match.group(1), number + 1, []
        elif line.strip() == "```" and language is not None:
            blocks.append((language, start, lines))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def shell_commands(path: Path) -> list[Command]:
    commands = []
    for language, start, lines in code_blocks(path):
        if language not in ("", "bash", "sh", "shell", "console"):
            continue
        i = 0
        while i < len(lines):
            first, text = i, lines[i].strip()
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1].rstrip() + " " + lines[i].strip()
            i += 1
            if text.startswith(("saddlepoint ", "python ")) or text == "saddlepoint":
                commands.append(Command(path.name, start + first, text))
    return commands


def shorten(argv: list[str]) -> list[str]:
    text = shlex.join(argv)
    for _, pattern, replacement in SHORTEN:
        if replacement == "steps":
            text = pattern.sub(lambda m: f"train.steps={max(10, int(m.group(1)) // 50)}", text)
        else:
            text = pattern.sub(replacement, text)
    argv = shlex.split(text)
    if len(argv) > 1 and argv[1] in RUNS_STEPS and not any("train.steps=" in a for a in argv):
        argv += ["--set", f"train.steps={DEFAULT_STEPS}"]
    return argv


def to_argv(command: Command) -> list[str]:
    argv = shlex.split(command.text, comments=True)
    if argv[0] == "saddlepoint":
        return [sys.executable, "-m", "saddlepoint", *shorten(argv)[1:]]
    return [sys.executable, *argv[1:]]


COMMANDS = [c for doc in DOCUMENTS for c in shell_commands(doc)]
SNIPPETS = [(start, "\n".join(lines)) for lang, start, lines in code_blocks(REPO / "README.md") if lang == "python"]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> dict[str, Path]:
    """One scratch directory per document, with the repository's configs/ and benchmarks/ linked in."""
    dirs: dict[str, Path] = {}
    for doc in DOCUMENTS:
        d = tmp_path_factory.mktemp(doc.stem)
        for name in ("configs", "benchmarks"):
            (d / name).symlink_to(REPO / name)
        dirs[doc.name] = d
    return dirs


def run(argv: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_the_docs_show_commands():
    """The extraction finds the README's commands (guards against a silent no-op)."""
    readme = [c for c in COMMANDS if c.document == "README.md"]
    assert len(readme) >= 10
    assert any(c.text.startswith("saddlepoint train") for c in readme)
    assert SNIPPETS, "the README shows Python snippets"


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_documented_command_runs(command: Command, scratch):
    if command.illustrative:
        pytest.skip(f"illustrative (marked in {command}): {command.text}")
    argv = to_argv(command)
    result = run(argv, scratch[command.document])
    assert result.returncode == 0, (
        f"{command}: `{command.text}` ran as `{shlex.join(argv[1:])}` and exited {result.returncode}:\n"
        f"{result.stderr[-3000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: f"README.md:{s[0]}" if isinstance(s, tuple) else "")
def test_readme_python_snippet_runs(snippet, tmp_path):
    start, code = snippet
    for name in ("configs",):
        (tmp_path / name).symlink_to(REPO / name)
    result = run([sys.executable, "-c", code], tmp_path)
    assert result.returncode == 0, f"README.md:{start}: the snippet failed:\n{result.stderr[-3000:]}"


def test_shortening_is_one_rule_for_every_command():
    cmd = Command("x.md", 1, "saddlepoint resume runs/wgan --set train.steps=1000")
    assert to_argv(cmd)[3:] == ["resume", "runs/wgan", "--set", "train.steps=20"]
    cmd = Command("x.md", 1, "saddlepoint train --config configs/ring.yaml  # a comment")
    assert to_argv(cmd)[3:] == ["train", "--config", "configs/ring.yaml", "--set", f"train.steps={DEFAULT_STEPS}"]
    cmd = Command("x.md", 1, "saddlepoint sweep --grid optim.name=a,b --seeds 3 --workers 2 --out s")
    assert to_argv(cmd)[3:] == ["sweep", "--grid", "optim.name=a,b", "--seeds", "1", "--workers", "1", "--out", "s",
                                "--set", f"train.steps={DEFAULT_STEPS}"]
    assert Command("x.md", 1, "python b.py --cgds  # illustrative").illustrative
