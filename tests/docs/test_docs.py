"""The README and docs/ stay true: links and anchors resolve, every table renders as a table, every `python -m` module
shown answers `--help`, every `+recipe=NAME` shown composes on the verl app it is shown with, every `make TARGET`
exists, and the recipe-key page lists exactly the keys the recipe files set."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from sophiavl_testing.markdown import tables

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
RECIPES = REPO / "recipes" / "config" / "recipe"

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, markup and punctuation other than '-' and '_' dropped, spaces
    turned into '-'."""
    text = re.sub(r"<[^>]+>", "", heading.strip())
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a markdown file, with GitHub's -1, -2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    for line in text.splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if not match:
            continue
        base = github_anchor(match.group(1))
        count = seen.get(base, 0)
        out.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return frozenset(out)


def code_text(path: Path) -> str:
    """The code of a markdown file: fenced blocks, indented blocks and inline code spans, one string."""
    text = path.read_text(encoding="utf-8")
    parts = [m.group(1) for m in _FENCE.finditer(text)]
    rest = _FENCE.sub("", text)
    parts += [line[4:] for line in rest.splitlines() if line.startswith("    ")]
    parts += re.findall(r"`([^`\n]+)`", rest)
    return "\n".join(parts)


def commands(path: Path) -> list[str]:
    """Shell commands of the fenced and indented code blocks, with backslash continuations joined."""
    text = path.read_text(encoding="utf-8")
    blocks = [m.group(1) for m in _FENCE.finditer(text)]
    rest = _FENCE.sub("", text)
    indented, current = [], []
    for line in rest.splitlines():
        if line.startswith("    "):
            current.append(line[4:])
        elif current and not line.strip():
            current.append("")
        else:
            if current:
                indented.append("\n".join(current))
            current = []
    if current:
        indented.append("\n".join(current))
    joined = "\n".join(blocks + indented).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip()]


def test_docs_exist():
    names = {p.name for p in DOCS}
    assert "README.md" in names and len(names) > 5, names


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_relative_links_and_anchors_resolve(doc):
    text = _FENCE.sub("", doc.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading anchor #{anchor} in {_rel(dest)}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_table_renders_whole(doc):
    """GitHub shows a run of `|` lines as a table only with a separator row under its first row (otherwise as text,
    for example rows cut off from their table by a paragraph), and drops the cells of a row beyond the header's
    count: a `|` inside a code span must be escaped as `\\|`."""
    broken = []
    for table in tables(doc):
        if not table.has_separator:
            broken.append(f"{_rel(doc)}:{table.line}: no |---| separator row under the first row (renders as text)")
        for offset, row in enumerate(table.rows):
            if len(row) != len(table.header):
                broken.append(
                    f"{_rel(doc)}:{table.line + offset}: {len(row)} cells, the header has {len(table.header)} "
                    f"(an unescaped | in a code span?)"
                )
    assert not broken, "\n".join(broken)


def _python_modules() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for doc in DOCS:
        for module in re.findall(r"python3?\s+-m\s+([A-Za-z_][\w.]*)", code_text(doc)):
            found.setdefault(module, set()).add(_rel(doc))
    return found


PYTHON_MODULES = _python_modules()


def _help(module: str) -> tuple[str, subprocess.CompletedProcess]:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    return module, proc


@cache
def _help_results() -> dict[str, subprocess.CompletedProcess]:
    # two at a time: most of these import verl (seconds each)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(_help, sorted(PYTHON_MODULES)))


def test_every_python_module_shown_answers_help():
    assert "verl.trainer.main_ppo" in PYTHON_MODULES
    bad = []
    for module, proc in _help_results().items():
        out = proc.stdout + proc.stderr
        # argparse prints "usage:", Hydra apps print their config groups
        if proc.returncode != 0 or not re.search(r"usage:|Powered by Hydra|== Config ==", out, re.I):
            bad.append(f"python -m {module} --help (shown in {sorted(PYTHON_MODULES[module])}): exit "
                       f"{proc.returncode}\n{out[-800:]}")  # fmt: skip
    assert not bad, "\n\n".join(bad)


# The Hydra app each entry point composes: (config module, config name).
_APPS = {
    "verl.trainer.main_ppo": ("verl.trainer.config", "ppo_trainer"),
    "verl.trainer.sft_trainer": ("verl.trainer.config", "sft_trainer_engine"),
    "verl.trainer.sft_trainer_ray": ("verl.trainer.config", "sft_trainer_engine"),
}


def _default_app(recipe: str) -> str:
    """The app of a recipe shown without an entry point: the SFT trainer for a recipe that sets ``optim`` (verl's SFT
    config group), else ``main_ppo``."""
    path = RECIPES / f"{recipe}.yaml"
    top = yaml.safe_load(path.read_text(encoding="utf-8")) or {} if path.exists() else {}
    return "verl.trainer.sft_trainer" if "optim" in top else "verl.trainer.main_ppo"


def _recipe_uses() -> set[tuple[str, str, str]]:
    """(recipe, app, doc) for every ``+recipe=sophiavl...`` in a command or inline code span of the docs (placeholders
    such as ``+recipe=NAME`` are not recipes); the app is the verl entry point of the same command, if it names one."""
    uses = set()
    for doc in DOCS:
        text = _FENCE.sub("", doc.read_text(encoding="utf-8"))
        spans = re.findall(r"`([^`\n]+)`", text)
        for line in commands(doc) + spans:
            apps = [app for app in _APPS if re.search(rf"-m\s+{re.escape(app)}(\s|$)", line)]
            for recipe in re.findall(r"\+recipe=(sophiavl\w*)", line):
                uses.add((recipe, apps[0] if apps else _default_app(recipe), _rel(doc)))
    return uses


def flat_keys(node, prefix: str = "") -> dict[str, object]:
    """The dotted leaf keys a recipe file sets (``defaults`` and the ``# @package`` line left out)."""
    out: dict[str, object] = {}
    for key, value in (node or {}).items():
        if not prefix and key == "defaults":
            continue
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_keys(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def recipe_keys(name: str) -> dict[str, object]:
    return flat_keys(yaml.safe_load((RECIPES / f"{name}.yaml").read_text(encoding="utf-8")))


RECIPE_USES = sorted(_recipe_uses())


@pytest.mark.parametrize(("recipe", "app", "doc"), RECIPE_USES, ids=[f"{r}@{a}@{d}" for r, a, d in RECIPE_USES])
def test_every_recipe_shown_composes_on_its_app(recipe, app, doc):
    assert (RECIPES / f"{recipe}.yaml").exists(), f"{doc}: +recipe={recipe} has no recipes/config/recipe/{recipe}.yaml"
    module, name = _APPS[app]
    with initialize_config_module(module, version_base=None):
        cfg = compose(name, overrides=[f"+recipe={recipe}"])
    missing = object()
    absent = [key for key in recipe_keys(recipe) if OmegaConf.select(cfg, key, default=missing) is missing]
    assert not absent, f"{doc}: +recipe={recipe} on {app} lacks {absent}"
    assert not isinstance(cfg.get("recipe"), str), "the recipe group is not on Hydra's search path"


def test_every_make_target_shown_exists():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+)\s*:(?!=)", makefile, re.M))
    missing = []
    for doc in DOCS:
        for target in re.findall(r"(?<![\w-])make\s+([a-z][\w-]*)", code_text(doc)):
            if target not in targets:
                missing.append(f"{_rel(doc)}: make {target}")
    assert not missing, "\n".join(missing)


def _expand(key: str) -> list[str]:
    """``a.{b,c}.d`` -> ``a.b.d``, ``a.c.d`` (one brace group)."""
    match = re.search(r"\{([^}]*)\}", key)
    if not match:
        return [key]
    return [key[: match.start()] + part.strip() + key[match.end() :] for part in match.group(1).split(",")]


def table_keys(page: Path) -> dict[str, set[str]]:
    """Per ``### `recipe` `` section of the recipe-key page, the keys in the first column of its table."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in page.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^###\s+`(\w+)`", line)
        if heading:
            current = sections.setdefault(heading.group(1), set())
            continue
        cell = re.match(r"^\|\s*`([^`]+)`\s*\|", line)
        if cell and current is not None:
            current.update(_expand(cell.group(1)))
    return sections


def test_recipe_key_page_lists_exactly_the_keys_each_recipe_sets():
    page = REPO / "docs" / "recipe-keys.md"
    sections = table_keys(page)
    files = sorted(p.stem for p in RECIPES.glob("*.yaml"))
    assert sorted(sections) == files, f"sections {sorted(sections)} vs recipe files {files}"
    diffs = []
    for name in files:
        listed, actual = sections[name], set(recipe_keys(name))
        if listed != actual:
            diffs.append(f"{name}: not listed {sorted(actual - listed)}; listed but not set {sorted(listed - actual)}")
    assert not diffs, "\n".join(diffs)
