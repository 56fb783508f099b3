"""Packaging checks: environment.yml matches pyproject.toml, `import refimpl` stays light,
and the version is a valid PEP 440 string that matches the installed metadata."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent

# PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"torch": "pytorch", "build": "python-build"}
# Entries of environment.yml that are not dependencies of refimpl.
CONDA_ONLY = {"python", "pip"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def pyproject_requirements() -> dict[str, SpecifierSet]:
    """Every dependency and extra of pyproject.toml, by conda name, with its range."""
    project = _pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    out: dict[str, SpecifierSet] = {}
    for text in reqs:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        name = CONDA_NAMES.get(name, name)
        if name in out:
            assert out[name] == req.specifier, (
                f"pyproject.toml asks for {name} with two ranges: {out[name]} and {req.specifier}"
            )
        out[name] = req.specifier
    return out


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


def environment_requirements() -> dict[str, str]:
    """Every conda and pip entry of environment.yml, by name, as the raw spec text."""
    out: dict[str, str] = {}
    for entry in environment()["dependencies"]:
        entries = entry["pip"] if isinstance(entry, dict) else [entry]
        for spec in entries:
            spec = str(spec).strip()
            if spec.startswith("python=") or spec == "python":
                out["python"] = spec
                continue
            req = Requirement(spec)
            name = canonicalize_name(req.name)
            assert name not in out, f"environment.yml lists {name} twice"
            out[name] = spec
    return out


def test_environment_basics():
    env = environment()
    assert env["name"] == "refimpl"
    assert env["channels"] == ["conda-forge"]


def test_environment_python_satisfies_requires_python():
    spec = environment_requirements()["python"]
    assert spec.startswith("python="), "environment.yml pins python as python=X.Y"
    version = Version(spec.split("=", 1)[1])
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert version in requires, f"python {version} does not satisfy requires-python {requires}"


@pytest.mark.parametrize("name", sorted(pyproject_requirements()))
def test_environment_has_every_pyproject_dependency(name):
    wanted = pyproject_requirements()[name]
    env = environment_requirements()
    assert name in env, f"environment.yml does not list {name} (pyproject.toml: {wanted})"
    got = Requirement(env[name]).specifier
    assert got == wanted, (
        f"environment.yml asks for {name}{got or ' (any version)'}, "
        f"pyproject.toml for {name}{wanted}"
    )


def test_environment_lists_nothing_extra():
    extra = set(environment_requirements()) - set(pyproject_requirements()) - CONDA_ONLY
    assert not extra, f"environment.yml lists packages that pyproject.toml does not: {extra}"


_IMPORT_PROBE = """
import json, sys, time
start = time.perf_counter()
import refimpl
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed,
                  "heavy": sorted(m for m in ("torch", "numba") if m in sys.modules)}))
"""


def test_import_refimpl_is_light_and_fast():
    runs = []
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert all(not r["heavy"] for r in runs), (
        f"`import refimpl` imported {runs[0]['heavy']}; import them lazily where needed"
    )
    best = min(r["seconds"] for r in runs)
    assert best < 0.5, f"`import refimpl` took {best:.3f} s at best (limit 0.5 s)"


def test_version_is_pep440_and_matches_metadata():
    import refimpl

    try:
        parsed = Version(refimpl.__version__)
    except InvalidVersion:
        pytest.fail(f"refimpl.__version__ = {refimpl.__version__!r} is not a PEP 440 version")
    assert str(parsed) == refimpl.__version__, "write the version in its normalized form"
    installed = importlib.metadata.version("refimpl")
    assert installed == refimpl.__version__, (
        f"installed metadata says {installed}, refimpl.__version__ says "
        f"{refimpl.__version__}; reinstall with pip install -e ."
    )


# --- one version: refimpl/_version.py, the installed and built metadata, CHANGELOG.md ----------
# Keep a Changelog headings: "## [Unreleased]" first, then "## [X.Y.Z] - YYYY-MM-DD", newest
# first; each release has "### Added" / "### Changed" / ... subsections.

CHANGELOG_SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def changelog_releases() -> list[dict]:
    """CHANGELOG.md's version headings in file order: version, date and subsection names."""
    import re

    heading = re.compile(r"## \[(?P<version>[^\]]+)\](?: - (?P<date>\S+))?")
    releases: list[dict] = []
    for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## ["):
            match = heading.fullmatch(line.strip())
            assert match, f"CHANGELOG.md: heading {line!r} is not '## [X.Y.Z] - YYYY-MM-DD'"
            releases.append({**match.groupdict(), "sections": []})
        elif line.startswith("### ") and releases:
            releases[-1]["sections"].append(line[4:].strip())
    return releases


def test_changelog_follows_keep_a_changelog_and_semver():
    import datetime
    import re

    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## Versioning policy" in text.partition("\n## [")[0], (
        "CHANGELOG.md states the versioning policy before the first version")
    releases = changelog_releases()
    assert releases[0]["version"] == "Unreleased" and releases[0]["date"] is None
    released = releases[1:]
    assert released, "CHANGELOG.md has no released version"
    semver = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
    for rel in released:
        assert semver.fullmatch(rel["version"]), f"{rel['version']} is not X.Y.Z"
        assert rel["date"], f"[{rel['version']}] has no date"
        datetime.date.fromisoformat(rel["date"])  # raises on a malformed date
        assert rel["sections"], f"[{rel['version']}] has no Added/Changed/... subsection"
        unknown = set(rel["sections"]) - CHANGELOG_SECTIONS
        assert not unknown, f"[{rel['version']}]: subsections {unknown} are not Keep a Changelog's"
    versions = [Version(r["version"]) for r in released]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions), (
        f"CHANGELOG.md versions are not strictly newest first: {[str(v) for v in versions]}")
    dates = [r["date"] for r in released]
    assert dates == sorted(dates, reverse=True), f"release dates are not newest first: {dates}"


def test_version_is_the_newest_changelog_release():
    import refimpl

    newest = changelog_releases()[1]["version"]
    assert newest == refimpl.__version__, (
        f"CHANGELOG.md's newest release is {newest}, refimpl.__version__ is "
        f"{refimpl.__version__}: bump refimpl/_version.py with the changelog")


def test_version_matches_the_built_wheel(tmp_path):
    """``python -m build`` (sdist, then the wheel from it) writes the version into the wheel's
    name and metadata. tests/install builds and installs it too; this only reads it."""
    import email.parser
    import zipfile

    import refimpl

    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp_path), str(ROOT)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    wheels = list(tmp_path.glob("*.whl"))
    assert len(wheels) == 1, f"python -m build wrote {sorted(p.name for p in tmp_path.iterdir())}"
    name, version = wheels[0].name.split("-")[:2]
    assert (name, version) == ("refimpl", refimpl.__version__), wheels[0].name
    with zipfile.ZipFile(wheels[0]) as z:
        metadata = email.parser.Parser().parsestr(
            z.read(f"refimpl-{version}.dist-info/METADATA").decode("utf-8"))
    assert metadata["Version"] == refimpl.__version__, (
        f"the wheel's metadata says {metadata['Version']}, refimpl.__version__ "
        f"{refimpl.__version__}")
