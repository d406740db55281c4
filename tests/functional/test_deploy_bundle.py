"""The Lambda bundle ``turnout deploy`` builds: the project's code and its dependencies for the
functions' runtime and architecture. Needs PyPI (pip downloads the wheels once), hence slow."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest

from control_plane.cli import lambda_bundle
from control_plane.packaging import zip_folder
from local_cloud.template import load_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bundle_holds_the_handlers_and_arm64_dependencies_and_rebuilds_identically(tmp_path):
    (tmp_path / "cloudformation").mkdir()
    shutil.copy(ROOT / "cloudformation" / "turnout.yaml", tmp_path / "cloudformation")
    template = load_template(tmp_path / "cloudformation" / "turnout.yaml")
    [target] = lambda_bundle.targets(template, tmp_path / "cloudformation")
    assert (target.python_version, target.architecture) == ("3.12", "arm64")
    assert "DataPlaneFunction" in target.functions

    lambda_bundle.build(target, ROOT)
    first = zip_folder(target.folder)
    lambda_bundle.build(target, ROOT)

    assert zip_folder(target.folder) == first  # same artifact hash: nothing to redeploy
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "control_plane/handlers/route_stream.py" in names
    assert "data_plane/proxy/handler.py" in names
    assert any(n.startswith("pydantic_core/") and n.endswith("cpython-312-aarch64-linux-gnu.so")
               for n in names)
    assert any(n.startswith("aws_lambda_powertools/") for n in names)
    assert not any(n.startswith(("boto3/", "botocore/")) for n in names)  # the runtime has them


def test_a_folder_turnout_did_not_build_is_never_replaced(tmp_path):
    folder = tmp_path / "build" / "lambda"
    folder.mkdir(parents=True)
    (folder / "precious.txt").write_text("mine")
    target = lambda_bundle.Target(folder, "3.12", "arm64", ("F",))

    with pytest.raises(lambda_bundle.BundleError, match="not built by turnout"):
        lambda_bundle.build(target, ROOT)

    assert (folder / "precious.txt").read_text() == "mine"
