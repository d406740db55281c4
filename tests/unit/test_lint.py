"""Static checks run as part of the test suite, so the README's one test command covers them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def test_code_passes_ruff():
    result = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudformation_template_passes_cfn_lint():
    result = subprocess.run([_tool("cfn-lint"), "cloudformation/turnout.yaml"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudformation_template_passes_checkov():
    # --skip-download: no calls to the vendor's API (policy metadata only; the checks are local).
    result = subprocess.run([_tool("checkov"), "-f", "cloudformation/turnout.yaml",
                             "--framework", "cloudformation", "--compact", "--quiet",
                             "--skip-download"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed checks: 0" in result.stdout, result.stdout + result.stderr


def test_every_checkov_suppression_says_why():
    from local_cloud.template import load_template

    template = load_template(ROOT / "cloudformation" / "turnout.yaml")
    unexplained = [
        f"{name}: {skip.get('id')}"
        for name, resource in template["Resources"].items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
        if len(str(skip.get("comment") or "").split()) < 5
    ]
    assert unexplained == []
