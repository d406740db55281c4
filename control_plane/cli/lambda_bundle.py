"""The folder the template's functions are packaged from, built for the Lambda runtime.

The template's functions name a local folder as their ``Code`` (``../build/lambda``, relative
to the template). ``turnout deploy`` fills it before packaging:

- the project's Python packages (``control_plane``, ``data_plane``) copied from the source tree;
- the project's runtime dependencies (``[project].dependencies`` in ``pyproject.toml``) except
  boto3 and botocore, which the Lambda Python runtime provides, installed by pip as binary
  wheels for the functions' Python version and architecture (``Runtime``, ``Architectures``).

Dependencies are installed once per requirement set, Python version and architecture into
``build/lambda-deps/<hash>/`` and copied from there: a rebuild needs no network and yields the
same files, so the packaged artifact keeps its hash and an unchanged project redeploys nothing.
A folder is only ever replaced when it is empty or was built here (it holds a marker file).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.packaging import CODE_PROPERTIES

PACKAGES = ("control_plane", "data_plane")
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore"})
MARKER = ".turnout-lambda-bundle"
_ARCHITECTURE_PLATFORMS = {"arm64": "aarch64", "x86_64": "x86_64"}
_COPY_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


class BundleError(RuntimeError):
    """The bundle cannot be built; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """Where the functions' code goes and what runs it."""

    folder: Path
    python_version: str
    architecture: str
    functions: tuple[str, ...]

    @property
    def platforms(self) -> tuple[str, ...]:
        machine = _ARCHITECTURE_PLATFORMS[self.architecture]
        return (f"manylinux_2_28_{machine}", f"manylinux2014_{machine}")


def targets(template: Mapping[str, Any], template_dir: Path) -> list[Target]:
    """The local code folders of the template's Python functions, one target per folder."""
    found: dict[Path, list[tuple[str, str, str]]] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type", "")
        properties = resource.get("Properties") or {}
        code = properties.get(CODE_PROPERTIES.get(kind, ""), None)
        runtime = str(properties.get("Runtime", ""))
        if not isinstance(code, str) or code.startswith("s3://") or not runtime.startswith(
                "python"):
            continue
        architecture = (properties.get("Architectures") or ["x86_64"])[0]
        folder = (template_dir / code).resolve()
        found.setdefault(folder, []).append((logical_id, runtime, architecture))
    result = []
    for folder, functions in found.items():
        kinds = {(runtime, architecture) for _, runtime, architecture in functions}
        if len(kinds) != 1:
            raise BundleError(f"the functions packaged from {folder} differ in runtime or "
                              f"architecture ({sorted(kinds)}); give each its own folder")
        (runtime, architecture), = kinds
        if architecture not in _ARCHITECTURE_PLATFORMS:
            raise BundleError(f"unknown Lambda architecture {architecture!r}")
        result.append(Target(folder, runtime.removeprefix("python"), architecture,
                             tuple(name for name, _, _ in functions)))
    return result


def runtime_dependencies(source_root: Path) -> list[str]:
    """``[project].dependencies`` of ``pyproject.toml``, without what the runtime provides."""
    pyproject = source_root / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise BundleError(f"cannot read the dependencies from {pyproject}: {exc}") from exc
    dependencies = []
    for requirement in project.get("dependencies", []):
        name = requirement.split(";")[0]
        for separator in "<>=!~[ ":
            name = name.split(separator)[0]
        if name.strip().lower() not in PROVIDED_BY_RUNTIME:
            dependencies.append(requirement)
    return dependencies


def _pip_install(requirements: list[str], into: Path, target: Target) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", target.python_version, "--target", str(into)]
    for platform in target.platforms:
        command += ["--platform", platform]
    result = subprocess.run([*command, *requirements], capture_output=True, text=True,  # noqa: S603
                            check=False)
    if result.returncode != 0:
        raise BundleError(
            "pip could not install the functions' dependencies for Lambda "
            f"(python{target.python_version}, {target.architecture}):\n"
            f"{(result.stderr or result.stdout).strip()[-2000:]}\n"
            "Check your network or package index settings, or build the folder yourself "
            "and pass --no-build")


def _dependencies(source_root: Path, target: Target, cache: Path,
                  say: Callable[[str], None]) -> Path:
    requirements = runtime_dependencies(source_root)
    key = hashlib.sha256(json.dumps(
        [requirements, target.python_version, target.architecture]).encode()).hexdigest()[:16]
    folder = cache / key
    if (folder / MARKER).is_file():
        return folder
    say(f"installing {len(requirements)} dependencies for python{target.python_version} "
        f"{target.architecture} into {folder} (once per requirement set)")
    partial = cache / f"{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _pip_install(requirements, partial, target)
    (partial / MARKER).write_text(json.dumps(requirements) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def _replaceable(folder: Path) -> bool:
    return not folder.exists() or (folder / MARKER).is_file() or (
        folder.is_dir() and not any(folder.iterdir()))


def build(target: Target, source_root: Path, *, packages: Iterable[str] = PACKAGES,
          say: Callable[[str], None] = lambda message: None) -> Path:
    """Fill ``target.folder`` with the project's packages and dependencies."""
    folder = target.folder
    if not _replaceable(folder):
        raise BundleError(f"{folder} exists and was not built by turnout; empty it, point the "
                          "template's Code elsewhere, or pass --no-build to package it as is")
    dependencies = _dependencies(source_root, target, folder.parent / f"{folder.name}-deps", say)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(dependencies, folder, ignore=_COPY_IGNORED)
    for package in packages:
        if not (source_root / package / "__init__.py").is_file():
            raise BundleError(f"package {package} not found in {source_root}")
        shutil.copytree(source_root / package, folder / package, ignore=_COPY_IGNORED)
    return folder
