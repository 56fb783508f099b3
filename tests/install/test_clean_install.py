"""refimpl as users get it: built, installed into fresh virtual environments, imported, run.

**The wheel** (``TestWheel``): ``python -m build`` makes an sdist and, from it, a wheel; both
must hold the package and nothing else. The wheel goes into a fresh venv outside the
repository (torch first, as the Makefile installs it, then the wheel with its core
dependencies only). There every module of refimpl is imported (the package walked, checked
against the source tree) from a scratch folder in isolated mode (``python -I``: neither the
repository nor the working directory is on ``sys.path``), so that a module that imports a
book-only or test-only package fails (they are not installed) and, for packages the core
environment does have, the names the imports add to ``sys.modules`` are checked against the
extras' packages; then one small example per chapter asserts a property of its result.

**The Colab path** (``TestColabPath``): the first code cell of
``notebooks/01_meta/meta_factorization.md`` is what a Colab reader runs (``git clone`` of
``_config.yml``'s ``repository.url``, ``%pip install "<clone>[book]"``, ``%cd`` into the
notebook's folder). The cell is parsed and replayed in a second fresh venv (with torch
installed first, as Colab has it), with the repository URL replaced by this checkout's
``file://`` URL and Colab's folder by a scratch one; any line the replay does not understand
fails the test. The notebook is then executed in that venv, from its folder in the clone, with
nbclient (installed by the book extra). A clone holds the **committed** files only
(``HEAD`` of this checkout): uncommitted changes are not part of this test (the wheel test
covers the working tree). Two venvs, because the core-only checks must see no book extra and
reinstalling refimpl from the clone over the wheel would leave the older of two equal versions.

Each step is timed; the times are printed at the end of the run (``tests/install/conftest.py``).
Everything is created under one temporary folder, removed afterwards. Deselect with
``-m "not install"``.
"""

from __future__ import annotations

import ast
import email.parser
import json
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jupytext
import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

import refimpl

from .dependencies import (
    IMPORT_EVERY_MODULE,
    ROOT,
    core_import_names,
    extras,
    forbidden_import_names,
    pyproject,
    refimpl_modules,
    requirement_texts,
)
from .venvs import Venv, run, torch_requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (as tests/test_packaging.py)
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 reads TOML with tomli")

pytestmark = pytest.mark.install

# What a venv has besides what refimpl's requirements bring: venv's own bootstrap.
BOOTSTRAP = {"pip", "setuptools", "wheel"}
# The files an sdist holds besides refimpl/ and refimpl.egg-info/.
SDIST_FILES = {"PKG-INFO", "README.md", "pyproject.toml", "setup.cfg", "CHANGELOG.md",
               "MANIFEST.in", "LICENSE"}


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="refimpl-install-") as tmp:
        yield Path(tmp)


def package_files() -> set[str]:
    """What the package consists of in the source tree: every file under ``refimpl/`` but
    bytecode and Numba caches (``__pycache__``)."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "refimpl").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def dists(scratch) -> Dists:
    out = scratch / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        step="python -m build (the sdist, then the wheel from it)", cwd=scratch)
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, f"python -m build wrote {sorted(out.iterdir())}"
    return Dists(sdists[0], wheels[0])


def _requirements_by_group(metadata) -> dict[str, set[str]]:
    """A wheel's Requires-Dist, grouped as pyproject.toml groups them (normalized text)."""
    groups: dict[str, set[str]] = {g: set() for g in ("core", *extras())}
    for text in metadata.get_all("Requires-Dist") or []:
        req = Requirement(text)
        marker, req.marker = req.marker, None
        if marker is None:
            groups["core"].add(str(req))
            continue
        hits = [g for g in extras() if marker.evaluate({"extra": g})]
        assert hits, f"Requires-Dist {text!r} belongs to no extra of pyproject.toml"
        for g in hits:
            groups[g].add(str(req))
    return groups


def _normalized(group: str) -> set[str]:
    return {str(Requirement(t)) for t in requirement_texts(group)}


# One small example per chapter, run in the core venv: tiny data, a property of the result
# asserted with a tolerance its conditioning justifies (float64 unless noted).
CHAPTER_EXAMPLES = {
    "01_meta": """
        # An exact rank-5 matrix is reproduced by its meta-factorizations (A = F G Hᵀ).
        import numpy as np
        from refimpl import meta
        from refimpl.matrices import low_rank_matrix
        A = low_rank_matrix(40, 30, 5, cond=10.0, seed=0)
        for name, result in {"svd_meta": meta.svd_meta(A, 5), "cpqr_meta": meta.cpqr_meta(A, 5),
                             "cur": meta.cur(A, 5)}.items():
            err = np.linalg.norm(A - result.meta.reconstruct()) / np.linalg.norm(A)
            assert err < 1e-10, f"{name}: relative error {err:.1e} (bound 1e-10)"
        """,
    "02_linalg": """
        # Pivoted QR reconstructs A with orthonormal Q; the Jacobi SVD matches LAPACK's values
        # (the default path: Numba kernels, compiled here from the installed package).
        import numpy as np
        from refimpl import linalg
        A = np.random.default_rng(0).standard_normal((30, 20))
        qr = linalg.cpqr(A)
        err = np.linalg.norm(A - qr.reconstruct()) / np.linalg.norm(A)
        orth = np.linalg.norm(qr.Q.T @ qr.Q - np.eye(20))
        s = linalg.jacobi_svd(A).s
        serr = np.max(np.abs(s - np.linalg.svd(A, compute_uv=False))) / s[0]
        assert err < 1e-13 and orth < 1e-13 and serr < 1e-13, (err, orth, serr)
        """,
    "03_sketch": """
        # The randomized SVD recovers an exact rank-4 matrix.
        import numpy as np
        from refimpl import sketch
        from refimpl.matrices import low_rank_matrix
        A = low_rank_matrix(60, 40, 4, cond=10.0, seed=1)
        svd = sketch.randomized_svd(A, 4, seed=0)
        err = np.linalg.norm(A - svd.reconstruct()) / np.linalg.norm(A)
        assert err < 1e-10, f"relative error {err:.1e} (bound 1e-10)"
        """,
    "04_nonneg": """
        # HALS fits an exact nonnegative rank-3 matrix with separable factors (an identity
        # block in each, so the factorization is unique and the fit converges).
        import numpy as np
        from refimpl import nonneg
        g = np.random.default_rng(0)
        W, H = g.random((30, 3)), g.random((3, 20))
        W[:3], H[:, :3] = np.eye(3), np.eye(3)
        X = W @ H
        fit = nonneg.nmf(X, 3, max_iter=2000, tol=1e-14)
        err = np.linalg.norm(X - fit.reconstruct()) / np.linalg.norm(X)
        assert fit.W.min() >= 0 and fit.H.min() >= 0
        assert err < 1e-8, f"relative error {err:.1e} (bound 1e-8)"
        """,
    "05_completion": """
        # ALS completes a planted rank-2 matrix from 60% of its entries, from the spectral
        # start (init="svd"): the Numba row solves, compiled here from the installed package.
        # A seen item is never recommended.
        import numpy as np
        from refimpl import completion
        g = np.random.default_rng(0)
        full = g.standard_normal((40, 2)) @ g.standard_normal((2, 30))
        seen = g.random((40, 30)) < 0.6
        u, i = np.nonzero(seen)
        R = completion.Interactions(u, i, full[seen], 40, 30)
        fit = completion.als(R, 2, reg=1e-8, max_iter=200, tol=0, init="svd")
        err = np.abs(fit.reconstruct() - full)[~seen].max() / np.abs(full).max()
        top = fit.recommend([0], 5, exclude=R)[0]
        assert err < 1e-6, f"largest error on unobserved entries {err:.1e} (bound 1e-6)"
        assert not seen[0, top].any()
        """,
    "06_tensor": """
        # A sum of two Kronecker products and a stack with exact Tucker-2 ranks (2, 3) are
        # recovered at those ranks.
        import numpy as np
        from refimpl import tensor
        rng = np.random.default_rng(0)
        W = sum(np.kron(rng.standard_normal((3, 4)), rng.standard_normal((5, 2)))
                for _ in range(2))
        kerr = np.linalg.norm(W - tensor.kron_svd(W, 3, 4, rank=2).reconstruct())
        U = np.linalg.qr(rng.standard_normal((6, 2)))[0]
        V = np.linalg.qr(rng.standard_normal((7, 3)))[0]
        X = np.stack([U @ rng.standard_normal((2, 3)) @ V.T for _ in range(4)])
        terr = np.linalg.norm(X - tensor.tucker2(X, (2, 3)).reconstruct())
        kerr, terr = kerr / np.linalg.norm(W), terr / np.linalg.norm(X)
        assert kerr < 1e-12 and terr < 1e-12, (kerr, terr)
        """,
    "09_lora": """
        # LoRA starts at the base model, trains, round-trips through safetensors exactly and
        # merges into the weights without changing the output (float32: bound 1e-5).
        import copy, os, tempfile
        import torch
        from torch import nn
        from refimpl import lora
        torch.manual_seed(0)
        base = nn.Sequential(nn.Linear(12, 20), nn.Tanh(), nn.Linear(20, 5))
        x = torch.randn(8, 12)
        config = lora.LoRAConfig(rank=2)
        model = lora.wrap(copy.deepcopy(base), ["0", "2"], config)
        assert torch.equal(model(x), base(x)), "LoRA must start at the base model (B = 0)"
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        y = model(x).detach()
        assert (y - base(x)).abs().max() > 1e-4, "training did not move the adapters"
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "adapter.safetensors")
            lora.save_adapter(model, path)
            again = lora.load_adapter(lora.wrap(copy.deepcopy(base), ["0", "2"], config), path)
        assert torch.equal(again(x), y), "save_adapter/load_adapter must round-trip exactly"
        err = (lora.merge(model)(x) - y).abs().max().item()
        assert err < 1e-5, f"merged output differs by {err:.1e} (bound 1e-5)"
        """,
    "10_optim": """
        # Riemannian SGD on a rank-3 RiemannLoRA layer fits a rank-one change of the teacher:
        # the loss at least halves in 30 steps.
        import copy
        import torch
        from torch import nn
        from refimpl import lora
        from refimpl.optim import RiemannianSGD
        torch.manual_seed(0)
        base = nn.Sequential(nn.Linear(12, 20), nn.Tanh(), nn.Linear(20, 5))
        x = torch.randn(64, 12)
        teacher = copy.deepcopy(base)
        with torch.no_grad():
            teacher[0].weight += torch.outer(torch.randn(20), torch.randn(12))
            target = teacher(x)
        model = lora.wrap(copy.deepcopy(base), ["0"], lora.RiemannLoRAConfig(rank=3))
        opt = RiemannianSGD(model, lr=1.0)
        losses = []
        for _ in range(30):
            loss = (model(x) - target).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0], f"loss {losses[0]:.3g} -> {losses[-1]:.3g}"
        """,
    "11_attention": """
        # Decoding with the KV cache (prefill 3 tokens, then one at a time) gives the full
        # forward's output; the fused kernel agrees with the reference masked softmax.
        import torch
        from refimpl.attention import attention_impl, causal_attention, make_attention
        torch.manual_seed(0)
        layer = make_attention("mha", 32, n_heads=4).double()
        x = torch.randn(2, 7, 32, dtype=torch.float64)
        full = layer(x)
        cache = layer.new_cache()
        steps = [layer(x[:, :3], cache)] + [layer(x[:, t:t + 1], cache) for t in range(3, 7)]
        derr = (torch.cat(steps, dim=1) - full).abs().max().item()
        q, k, v = (torch.randn(2, 4, 7, 8, dtype=torch.float64) for _ in range(3))
        with attention_impl("reference"):
            ref = causal_attention(q, k, v)
        kerr = (causal_attention(q, k, v) - ref).abs().max().item()
        assert derr < 1e-12 and kerr < 1e-12, (derr, kerr)
        """,
}


@pytest.fixture(scope="class")  # removed after TestWheel (a venv with torch is ~1 GB)
def core_venv(dists, scratch) -> Iterator[Venv]:
    venv = Venv(scratch / "core-venv", "core venv", scratch)
    venv.pip_install([str(dists.wheel)], step="the wheel (core dependencies only)")
    yield venv
    shutil.rmtree(venv.path, ignore_errors=True)


class TestWheel:
    """Build, then install the wheel into a fresh venv with the core dependencies only."""

    def test_sdist_holds_the_package_and_its_metadata_only(self, dists):
        version = refimpl.__version__
        assert dists.sdist.name == f"refimpl-{version}.tar.gz"
        with tarfile.open(dists.sdist) as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
        top = f"refimpl-{version}/"
        assert all(n.startswith(top) for n in names), names
        rel = {n.removeprefix(top) for n in names}
        package = {n for n in rel if n.startswith("refimpl/")}
        assert package == package_files(), (
            f"sdist and source tree differ in refimpl/: {sorted(package ^ package_files())}")
        rest = {n for n in rel - package if not n.startswith("refimpl.egg-info/")}
        assert rest == SDIST_FILES, (
            f"the sdist holds {sorted(rest - SDIST_FILES)} besides the package "
            f"(and lacks {sorted(SDIST_FILES - rest)}); see MANIFEST.in")

    def test_wheel_holds_the_package_and_pyproject_metadata(self, dists):
        version = refimpl.__version__
        assert dists.wheel.name == f"refimpl-{version}-py3-none-any.whl"
        with zipfile.ZipFile(dists.wheel) as z:
            names = set(z.namelist())
            meta_text = z.read(f"refimpl-{version}.dist-info/METADATA").decode("utf-8")
        package = {n for n in names if n.startswith("refimpl/")}
        assert package == package_files(), (
            f"wheel and source tree differ in refimpl/: {sorted(package ^ package_files())}")
        assert all(n.startswith(f"refimpl-{version}.dist-info/") for n in names - package)
        metadata = email.parser.Parser().parsestr(meta_text)
        assert metadata["Name"] == "refimpl" and metadata["Version"] == version
        assert metadata["Requires-Python"] == pyproject()["project"]["requires-python"]
        assert sorted(metadata.get_all("Provides-Extra") or []) == extras()
        groups = _requirements_by_group(metadata)
        for group in ("core", *extras()):
            assert groups[group] == _normalized(group), (
                f"the wheel's {group} requirements {sorted(groups[group])} differ from "
                f"pyproject.toml's {sorted(_normalized(group))}")

    def test_core_install_brings_the_core_dependencies_only(self, core_venv):
        probe = core_venv.python_isolated(
            "import importlib.metadata as md, json\n"
            "print(json.dumps({d.metadata['Name']: d.requires or [] "
            "for d in md.distributions()}))", step="list the installed distributions")
        installed = {canonicalize_name(k): v for k, v in json.loads(probe.stdout).items()}
        # What refimpl's core requirements bring, followed through the venv's own metadata.
        wanted, todo = set(), ["refimpl"]
        while todo:
            name = canonicalize_name(Requirement(todo.pop()).name)
            if name in wanted:
                continue
            wanted.add(name)
            for text in installed.get(name, []):
                req = Requirement(text)
                if req.marker is None or req.marker.evaluate({"extra": ""}):
                    todo.append(text)
        assert wanted <= set(installed), f"not installed: {sorted(wanted - set(installed))}"
        unexpected = set(installed) - wanted - BOOTSTRAP
        assert not unexpected, f"the core install brought {sorted(unexpected)} as well"
        spec = torch_requirement()[0]
        try:
            torch_req = Requirement(spec)
        except InvalidRequirement:  # a URL or file path: nothing to compare with
            return
        probe = core_venv.python_isolated("import importlib.metadata as md; "
                                          "print(md.version('torch'))", step="torch version")
        version = probe.stdout.strip()
        assert torch_req.specifier.contains(version, prereleases=True), (
            f"torch {version} in the venv, TORCH_SPEC asks for {spec}: the wheel's install "
            "replaced the torch installed first")

    def test_every_module_imports_without_the_extras(self, core_venv):
        forbidden = forbidden_import_names()
        probe = core_venv.python_isolated(IMPORT_EVERY_MODULE, *core_import_names(),
                                          step="import every refimpl module")
        result = json.loads(probe.stdout.strip().splitlines()[-1])
        site = core_venv.path.resolve()
        assert Path(result["file"]).resolve().is_relative_to(site), (
            f"refimpl was imported from {result['file']}, not from the venv {site}")
        assert result["version"] == refimpl.__version__
        walked, expected = set(result["modules"]), refimpl_modules()
        assert walked == expected, (
            f"the installed package and the source tree differ: {sorted(walked ^ expected)}")
        imported = sorted(set(result["new"]) & forbidden)
        assert not imported, f"importing refimpl's modules imported {imported} (extras' packages)"

    @pytest.mark.parametrize("chapter", sorted(CHAPTER_EXAMPLES))
    def test_chapter_example(self, core_venv, chapter):
        core_venv.python_isolated(textwrap.dedent(CHAPTER_EXAMPLES[chapter]),
                                  step=f"chapter {chapter} example")


# --- the Colab path ---------------------------------------------------------------------------

NOTEBOOK = ROOT / "notebooks" / "01_meta" / "meta_factorization.md"
COLAB_GUARD = 'if "google.colab" in sys.modules:'
# git clone's options that take a value (the simulation must find the URL and the folder).
_GIT_CLONE_VALUE_OPTIONS = {"--depth", "-b", "--branch", "-o", "--origin", "-c", "--config",
                            "--reference", "--filter", "-j", "--jobs", "--template",
                            "--shallow-since", "--shallow-exclude", "--separate-git-dir"}


@dataclass(frozen=True)
class ColabStep:
    """One line of the Colab cell, translated: ``kind`` is ``"clone"`` (``argv`` is the git
    command), ``"pip"`` (``argv``: the arguments after ``pip install``) or ``"cd"`` (``path``)."""

    kind: str
    line: str
    argv: tuple[str, ...] = ()
    path: Path | None = None


def first_code_cell(md: Path) -> str:
    """The source of a MyST notebook's first code cell."""
    return next(c.source for c in jupytext.read(md).cells if c.cell_type == "code")


def colab_steps(source: str, *, repository: str, local_url: str,
                local_root: Path) -> list[ColabStep]:
    """Translate the Colab block of a notebook's first cell into commands for this machine.

    ``repository`` (``_config.yml``'s ``repository.url``) becomes ``local_url`` wherever a
    string variable holds it, and the folder the cell clones into becomes ``local_root``.
    Understood: ``import sys``, comments and blank lines outside the block; inside it, string
    assignments, ``!git clone``, ``%pip install`` and ``%cd``, with ``$NAME`` / ``{NAME}``
    expanded as IPython does. Anything else fails: the replay would no longer be the cell.
    """
    lines = source.splitlines()
    assert COLAB_GUARD in [ln.strip() for ln in lines], (
        f"the first cell has no `{COLAB_GUARD}` block to replay")
    start = next(i for i, ln in enumerate(lines) if ln.strip() == COLAB_GUARD)
    for ln in lines[:start]:
        assert not ln.strip() or ln.strip().startswith("#") or ln.strip() == "import sys", (
            f"the Colab replay does not follow this line before the block: {ln!r}")
    body = []
    for ln in lines[start + 1:]:
        if ln.strip() and not ln[:1].isspace():
            raise AssertionError(f"the Colab replay does not follow this line after the block: "
                                 f"{ln!r}")
        body.append(ln.strip())
    variables: dict[str, str] = {}
    substituted = False
    colab_root: str | None = None
    steps: list[ColabStep] = []

    def expand(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            assert name in variables, f"the Colab cell uses {name!r} before assigning it"
            return variables[name]
        return re.sub(r"\$(\w+)|\{(\w+)\}", value, text)

    def localize(arg: str) -> str:
        assert colab_root is not None, "the Colab cell uses the clone before cloning"
        return arg.replace(colab_root, str(local_root))

    for ln in body:
        if not ln or ln.startswith("#"):
            continue
        assignment = re.fullmatch(r"([A-Za-z_]\w*)\s*=\s*(.+)", ln)
        if assignment and not ln.startswith(("!", "%")):
            value = ast.literal_eval(assignment.group(2))
            assert isinstance(value, str), (
                f"the Colab replay does not follow a non-string assignment: {ln!r}")
            if value == repository:
                value, substituted = local_url, True
            variables[assignment.group(1)] = value
        elif ln.startswith("!"):
            argv = shlex.split(expand(ln[1:]))
            assert argv[:2] == ["git", "clone"], (
                f"the Colab replay does not follow shell commands but `!git clone`: {ln!r}")
            positional, skip = [], False
            for arg in argv[2:]:
                if skip:
                    skip = False
                elif arg in _GIT_CLONE_VALUE_OPTIONS:
                    skip = True
                elif not arg.startswith("-"):
                    positional.append(arg)
            assert len(positional) == 2, f"`git clone URL FOLDER` expected: {ln!r}"
            if positional[0] == repository:  # written out instead of through a variable
                argv[argv.index(repository)], substituted = local_url, True
            assert local_url in argv, (
                f"the cell clones {positional[0]}, not _config.yml's repository.url "
                f"({repository})")
            colab_root = positional[1]
            argv[len(argv) - 1 - argv[::-1].index(colab_root)] = str(local_root)
            steps.append(ColabStep("clone", ln, argv=tuple(argv)))
        elif ln.startswith("%pip "):
            argv = [localize(a) for a in shlex.split(expand(ln[len("%pip "):]))]
            assert argv[0] == "install", (
                f"the Colab replay does not follow `%pip` commands but `install`: {ln!r}")
            assert any(str(local_root) in a for a in argv), f"the cell installs no clone: {ln!r}"
            steps.append(ColabStep("pip", ln, argv=tuple(argv[1:])))
        elif ln.startswith("%cd "):
            path = Path(localize(expand(ln[len("%cd "):].strip())))
            assert path.is_relative_to(local_root), f"the cell leaves the clone: {ln!r}"
            steps.append(ColabStep("cd", ln, path=path))
        else:
            raise AssertionError(f"the Colab replay does not follow this line of the cell: {ln!r}")
    assert substituted, f"the cell never names _config.yml's repository.url ({repository})"
    assert [s.kind for s in steps] == ["clone", "pip", "cd"], (
        f"the replay expects clone, pip install, cd in that order; the cell has "
        f"{[s.line for s in steps]}")
    return steps


def _repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return config["repository"]["url"]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def test_colab_cell_translation_follows_the_cell(tmp_path):
    """The translation itself: URL and folder substituted, the rest of each line kept."""
    steps = colab_steps(first_code_cell(NOTEBOOK), repository=_repository_url(),
                        local_url="file:///x/repo", local_root=tmp_path / "book")
    clone, pip, cd = steps
    assert clone.argv[:2] == ("git", "clone") and "file:///x/repo" in clone.argv
    assert clone.argv[-1] == str(tmp_path / "book")
    assert f"{tmp_path / 'book'}[book]" in pip.argv
    assert cd.path == tmp_path / "book" / NOTEBOOK.parent.relative_to(ROOT)
    cell = first_code_cell(NOTEBOOK)
    changed = {  # edits the replay must refuse, and what it says
        cell + "\n    !pip install numpy": "does not follow shell commands",
        cell + "\n    %env FULL=1": "does not follow this line",
        cell + "\nprint('done')": "after the block",
        cell.replace(_repository_url(), "https://github.com/someone/else"): "repository.url",
        cell.replace('if "google.colab" in sys.modules:', "if True:"): "block to replay",
    }
    for source, message in changed.items():
        with pytest.raises(AssertionError, match=message):
            colab_steps(source, repository=_repository_url(), local_url="file:///x/repo",
                        local_root=tmp_path / "book")


@dataclass(frozen=True)
class Colab:
    venv: Venv
    clone: Path
    cwd: Path
    head: str


def _clone_version(clone: Path) -> str:
    text = (clone / "refimpl" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", text)
    assert match, f"no __version__ in the clone's refimpl/_version.py: {text!r}"
    return match.group(1)


@pytest.fixture(scope="class")  # removed after TestColabPath
def colab(scratch) -> Iterator[Colab]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the Colab path clones the repository")
    try:
        top = Path(_git("rev-parse", "--show-toplevel")).resolve()
    except subprocess.CalledProcessError:
        top = None
    if top != ROOT:
        pytest.skip(f"{ROOT} is not the root of a git checkout (found {top}): the Colab "
                    "path clones the repository, which needs one")
    head = _git("rev-parse", "HEAD")
    clone = scratch / "colab-clone"
    steps = colab_steps(first_code_cell(NOTEBOOK), repository=_repository_url(),
                        local_url=ROOT.as_uri(), local_root=clone)
    venv = Venv(scratch / "colab-venv", "colab venv", scratch)  # Colab has torch
    cwd = None
    for step in steps:
        if step.kind == "clone":
            run(step.argv, step=f"colab: {step.line} (HEAD {head[:12]}, committed files "
                "only)", cwd=scratch, env=venv.env)
        elif step.kind == "pip":
            venv.pip_install(step.argv, step=f"{' '.join(step.argv)} (the cell's "
                             f"`{step.line}`)", cwd=scratch)
        else:
            assert step.path is not None and step.path.is_dir(), f"{step.line}: no folder"
            cwd = step.path
    assert cwd is not None
    yield Colab(venv, clone, cwd, head)
    shutil.rmtree(venv.path, ignore_errors=True)
    shutil.rmtree(clone, ignore_errors=True)


class TestColabPath:
    """The first cell's install replayed in a fresh venv; the notebook executed there."""

    def test_the_clone_is_this_checkout_at_head(self, colab):
        head = subprocess.run(["git", "-C", str(colab.clone), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert head == colab.head

    def test_the_venv_has_the_clones_refimpl_with_the_book_extra(self, colab):
        probe = colab.venv.python_isolated(
            "import importlib.metadata as md, json\n"
            "d = md.distribution('refimpl')\n"
            "print(json.dumps({'version': d.version, 'direct_url': d.read_text("
            "'direct_url.json'), 'installed': sorted(x.metadata['Name'] for x in "
            "md.distributions())}))", step="refimpl's origin")
        got = json.loads(probe.stdout)
        assert got["version"] == _clone_version(colab.clone)
        origin = json.loads(got["direct_url"] or "{}").get("url", "")
        assert origin == colab.clone.as_uri(), f"refimpl was installed from {origin!r}"
        book = tomllib.loads((colab.clone / "pyproject.toml").read_text(encoding="utf-8"))
        wanted = {canonicalize_name(Requirement(t).name)
                  for t in book["project"]["optional-dependencies"]["book"]}
        installed = {canonicalize_name(n) for n in got["installed"]}
        assert wanted <= installed, f"the book extra's {sorted(wanted - installed)} are missing"

    def test_first_notebook_runs_in_the_colab_venv(self, colab):
        notebook = colab.cwd / NOTEBOOK.with_suffix(".ipynb").name
        assert notebook.exists(), f"{notebook} is not in the clone (is it committed?)"
        result = colab.venv.python_isolated(
            _EXECUTE, str(notebook), step=f"execute {notebook.relative_to(colab.clone)}",
            cwd=colab.cwd, timeout=1200)
        kernel = json.loads(result.stdout.strip().splitlines()[-1])
        prefix = colab.venv.path.resolve()
        assert Path(kernel["prefix"]).resolve() == prefix, (
            f"the notebook ran in {kernel['prefix']}, not in the Colab venv {prefix}")
        assert Path(kernel["refimpl"]).resolve().is_relative_to(prefix), kernel["refimpl"]
        assert kernel["version"] == _clone_version(colab.clone)
        assert Path(kernel["cwd"]).resolve() == colab.cwd.resolve()


# Executes a notebook in place with nbclient (the kernel: the notebook's, found in the venv)
# and appends a cell that reports where it ran; prints that report.
_EXECUTE = """
import json, sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import json, os, sys, refimpl\\n"
    "print(json.dumps({'prefix': sys.prefix, 'refimpl': refimpl.__file__,\\n"
    "                  'version': refimpl.__version__, 'cwd': os.getcwd()}))"))
NotebookClient(nb, timeout=600, kernel_name=nb.metadata.kernelspec.name,
               resources={"metadata": {"path": "."}}).execute()
outputs = nb.cells[-1].outputs
print("".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream"))
"""
