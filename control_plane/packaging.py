"""What ``aws cloudformation package`` does: a template's local paths become S3 artifacts.

Each property below whose value is a local path (relative to the template's folder) is
uploaded and replaced by where it now lives:

=================================  ========================  =================================
resource type                      property                  becomes
=================================  ========================  =================================
``AWS::Lambda::Function``          ``Code``                  ``{S3Bucket, S3Key}``
``AWS::Lambda::LayerVersion``      ``Content``               ``{S3Bucket, S3Key}``
``AWS::Serverless::Function``      ``CodeUri``               ``s3://bucket/key``
``AWS::StepFunctions::StateMachine`` ``DefinitionS3Location``  ``{Bucket, Key}``
=================================  ========================  =================================

A folder is zipped; a ``.zip`` or ``.jar`` file is uploaded as it is, any other file zipped
(a state machine definition is always uploaded as it is). Zips are reproducible (sorted
entries, fixed timestamps and modes, no ``__pycache__``), the key is the SHA-256 of the
content, and an object already under that key is not uploaded again: packaging an unchanged
tree uploads nothing and yields the same template, so a redeploy has nothing to change.

The local cloud uses the same code with its own artifact for every code property
(:func:`zip_packages` of the source tree), since its functions run from the source tree.
"""

from __future__ import annotations

import copy
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_ARCHIVE_SUFFIXES = (".zip", ".jar")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)

CODE_PROPERTIES = {
    "AWS::Lambda::Function": "Code",
    "AWS::Lambda::LayerVersion": "Content",
    "AWS::Serverless::Function": "CodeUri",
}
DEFINITION_PROPERTIES = {
    "AWS::StepFunctions::StateMachine": "DefinitionS3Location",
}


class PackagingError(RuntimeError):
    """A local path in the template cannot be packaged; the message names it."""


@dataclass(frozen=True)
class Packaged:
    """One property that now points at an artifact in S3."""

    logical_id: str
    property: str
    source: str
    bucket: str
    key: str
    uploaded: bool


def _zip(entries: Iterable[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _files(folder: Path) -> Iterable[Path]:
    for path in folder.rglob("*"):
        if (path.is_file() and "__pycache__" not in path.parts
                and path.suffix not in _SKIPPED_SUFFIXES):
            yield path


def zip_folder(folder: Path) -> bytes:
    """A reproducible zip of everything in ``folder`` (paths relative to it)."""
    return _zip((path.relative_to(folder).as_posix(), path) for path in _files(folder))


def zip_packages(source_root: Path, packages: Iterable[str]) -> bytes:
    """A reproducible zip of the Python ``packages`` found in ``source_root``."""
    entries = []
    for package in packages:
        folder = source_root / package
        if folder.is_dir():
            entries += [(path.relative_to(source_root).as_posix(), path)
                        for path in _files(folder)]
    return _zip(entries)


def find_source_root(start: str | Path, packages: Iterable[str]) -> Path:
    """The nearest folder at or above ``start`` holding one of the Python ``packages``."""
    names = tuple(packages)
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if any((folder / name / "__init__.py").is_file() for name in names):
            return folder
    raise FileNotFoundError(f"none of the packages {', '.join(names)} found above {here}")


def code_artifact(path: Path) -> bytes:
    """What ``aws cloudformation package`` uploads for a code path: see the module docstring."""
    if path.is_dir():
        return zip_folder(path)
    if path.is_file():
        if path.suffix in _ARCHIVE_SUFFIXES:
            return path.read_bytes()
        return _zip([(path.name, path)])
    raise PackagingError(f"{path} does not exist")


class ArtifactStore:
    """An S3 bucket (and key prefix) that holds artifacts under their content hash."""

    def __init__(self, s3: Any, bucket: str, *, prefix: str = "", create_bucket: bool = False):
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.create_bucket = create_bucket
        self._checked = False

    def key_for(self, body: bytes, extension: str) -> str:
        name = f"{hashlib.sha256(body).hexdigest()}{extension}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, body: bytes, extension: str) -> tuple[str, bool]:
        """Store ``body``; returns its key and whether it was uploaded (False: already there)."""
        from botocore.exceptions import ClientError

        self._ensure_bucket()
        key = self.key_for(body, extension)
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return key, False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key, True

    def _ensure_bucket(self) -> None:
        if self._checked:
            return
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            if not self.create_bucket:
                raise
            self.s3.create_bucket(Bucket=self.bucket)
        self._checked = True


def _is_local_path(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not value.startswith("s3://")


def package_template(
    template: dict[str, Any],
    *,
    template_dir: Path,
    store: ArtifactStore,
    artifact_for: Callable[[Path], bytes] = code_artifact,
    definitions: bool = True,
    on_packaged: Callable[[Packaged], None] = lambda packaged: None,
) -> dict[str, Any]:
    """A copy of ``template`` whose local paths point at artifacts in ``store``.

    ``artifact_for`` makes the artifact of a code path; ``definitions=False`` leaves state
    machine definition files where they are.
    """
    packaged = copy.deepcopy(template)
    artifacts: dict[Path, bytes] = {}
    for logical_id, resource in packaged.get("Resources", {}).items():
        kind = resource.get("Type", "")
        properties = resource.get("Properties") or {}
        name = CODE_PROPERTIES.get(kind)
        if name and _is_local_path(properties.get(name)):
            path = (template_dir / properties[name]).resolve()
            if path not in artifacts:
                artifacts[path] = artifact_for(path)
            key, uploaded = store.put(artifacts[path], ".zip")
            if kind == "AWS::Serverless::Function":
                properties[name] = f"s3://{store.bucket}/{key}"
            else:
                properties[name] = {"S3Bucket": store.bucket, "S3Key": key}
            on_packaged(Packaged(logical_id, name, str(path), store.bucket, key, uploaded))
        name = DEFINITION_PROPERTIES.get(kind)
        if definitions and name and _is_local_path(properties.get(name)):
            path = (template_dir / properties[name]).resolve()
            if not path.is_file():
                raise PackagingError(f"{logical_id}.{name}: {path} does not exist")
            key, uploaded = store.put(path.read_bytes(), path.suffix)
            properties[name] = {"Bucket": store.bucket, "Key": key}
            on_packaged(Packaged(logical_id, name, str(path), store.bucket, key, uploaded))
    return packaged
