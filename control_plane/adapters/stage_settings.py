"""The stage's method settings (per-method throttling), through API Gateway's control plane.

The reconciler's core owns the stage's deployment and variables; this adapter reads and
patches only ``methodSettings`` throttling, in one ``UpdateStage`` per batch.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import error_code, translate


class StageSettingsAdapter:
    def __init__(self, client, rest_api_id: str, stage_name: str) -> None:
        self.client = client
        self.rest_api_id = rest_api_id
        self.stage_name = stage_name

    def method_settings(self) -> dict[str, Any] | None:
        """The stage's ``methodSettings`` (None: the stage does not exist)."""
        try:
            raw = self.client.get_stage(restApiId=self.rest_api_id, stageName=self.stage_name)
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return None
            raise translate(exc, action="GetStage") from exc
        except BotoCoreError as exc:
            raise translate(exc, action="GetStage") from exc
        return dict(raw.get("methodSettings") or {})

    def update(self, operations: list[dict[str, str]]) -> None:
        if not operations:
            return
        try:
            self.client.update_stage(restApiId=self.rest_api_id, stageName=self.stage_name,
                                     patchOperations=operations)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="UpdateStage") from exc
