"""What ``aws cloudformation package`` does for local code paths, done against the embedded S3.

A ``Code`` (``AWS::Lambda::Function``) or ``Content`` (``AWS::Lambda::LayerVersion``) that is a
local path is replaced by ``{S3Bucket, S3Key}`` of an uploaded zip, by the same code
``turnout deploy`` packages with (:mod:`control_plane.packaging`). Locally the functions run
from the source tree, so the zip holds the project's Python packages (``control_plane``,
``data_plane``) read from that tree, whatever the path names (it usually points at a build
folder that only a real build fills). The zip is byte-for-byte reproducible and its key is its
hash, so packaging an unchanged tree changes nothing in the template: redeploys stay no-ops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from control_plane.packaging import ArtifactStore, Packaged, zip_packages
from control_plane.packaging import find_source_root as _find_source_root
from control_plane.packaging import package_template as package_paths

DEFAULT_PACKAGES = ("control_plane", "data_plane")
ARTIFACT_BUCKET = "turnout-local-artifacts"


def find_source_root(start: str | Path, packages: Iterable[str] = DEFAULT_PACKAGES) -> Path:
    """The nearest folder at or above ``start`` holding one of ``packages``."""
    return _find_source_root(start, packages)


def build_artifact(source_root: Path, packages: Iterable[str] = DEFAULT_PACKAGES) -> bytes:
    """A reproducible zip of ``packages`` (fixed timestamps and modes, sorted entries)."""
    return zip_packages(source_root, packages)


def package_template(
    template: dict[str, Any],
    *,
    s3: Any,
    source_root: Path,
    packages: Iterable[str] = DEFAULT_PACKAGES,
    bucket: str = ARTIFACT_BUCKET,
    on_progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """A copy of ``template`` whose local code paths point at an artifact uploaded to ``s3``."""
    names = tuple(packages)
    built: list[bytes] = []

    def artifact(path: Path) -> bytes:
        if not built:
            built.append(build_artifact(source_root, names))
        return built[0]

    def report(packaged: Packaged) -> None:
        on_progress(f"packaged {packaged.logical_id}: {', '.join(names)} -> "
                    f"s3://{packaged.bucket}/{packaged.key}")

    return package_paths(template, template_dir=source_root,
                         store=ArtifactStore(s3, bucket, prefix="lambda", create_bucket=True),
                         artifact_for=artifact, definitions=False, on_packaged=report)
