"""What ``aws cloudformation package`` does for local code paths, done against the embedded S3.

A ``Code`` (``AWS::Lambda::Function``) or ``Content`` (``AWS::Lambda::LayerVersion``) that is a
local path is replaced by ``{S3Bucket, S3Key}`` of an uploaded zip. Locally the functions run
from the source tree, so the zip holds the project's Python packages (``control_plane``,
``data_plane``) read from that tree, whatever the path names (it usually points at a build
folder that only a real build fills). The zip is byte-for-byte reproducible and its key is its
hash, so packaging an unchanged tree changes nothing in the template: redeploys stay no-ops.
"""

from __future__ import annotations

import copy
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DEFAULT_PACKAGES = ("control_plane", "data_plane")
ARTIFACT_BUCKET = "turnout-local-artifacts"
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_LOCAL_CODE_PROPERTIES = {
    "AWS::Lambda::Function": "Code",
    "AWS::Lambda::LayerVersion": "Content",
}


def find_source_root(start: str | Path, packages: Iterable[str] = DEFAULT_PACKAGES) -> Path:
    """The nearest folder at or above ``start`` holding one of ``packages``."""
    names = tuple(packages)
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if any((folder / name / "__init__.py").is_file() for name in names):
            return folder
    raise FileNotFoundError(f"none of the packages {', '.join(names)} found above {here}")


def build_artifact(source_root: Path, packages: Iterable[str] = DEFAULT_PACKAGES) -> bytes:
    """A reproducible zip of ``packages`` (fixed timestamps and modes, sorted entries)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in packages:
            folder = source_root / package
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if (not path.is_file() or "__pycache__" in path.parts
                        or path.suffix in _SKIPPED_SUFFIXES):
                    continue
                info = zipfile.ZipInfo(path.relative_to(source_root).as_posix(),
                                       date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _is_local_path(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("s3://")


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
    packaged = copy.deepcopy(template)
    targets = [
        (logical_id, resource["Properties"], _LOCAL_CODE_PROPERTIES[resource.get("Type")])
        for logical_id, resource in packaged["Resources"].items()
        if resource.get("Type") in _LOCAL_CODE_PROPERTIES
        and _is_local_path((resource.get("Properties") or {}).get(
            _LOCAL_CODE_PROPERTIES[resource.get("Type")]))
    ]
    if not targets:
        return packaged
    artifact = build_artifact(source_root, packages)
    key = f"lambda/{hashlib.sha256(artifact).hexdigest()}.zip"
    _upload_once(s3, bucket, key, artifact)
    for logical_id, properties, name in targets:
        on_progress(f"packaged {logical_id}: {', '.join(packages)} -> s3://{bucket}/{key}")
        properties[name] = {"S3Bucket": bucket, "S3Key": key}
    return packaged


def _upload_once(s3: Any, bucket: str, key: str, body: bytes) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
