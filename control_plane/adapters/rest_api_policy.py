"""The REST API's resource policy, written with ``UpdateRestApi replace /policy``.

The policy is read with the rest of the API by :class:`~control_plane.adapters.apigateway.
ApiGatewayAdapter` (``ObservedApi.policy``); this adapter only writes it, and returns the
policy as API Gateway stored it (it may re-serialise the document).
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import translate


class RestApiPolicyAdapter:
    def __init__(self, client, rest_api_id: str) -> None:
        self.client = client
        self.rest_api_id = rest_api_id

    def replace(self, policy_text: str) -> str:
        """Write ``policy_text``; returns the stored policy."""
        try:
            raw = self.client.update_rest_api(
                restApiId=self.rest_api_id,
                patchOperations=[{"op": "replace", "path": "/policy", "value": policy_text}],
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="UpdateRestApi") from exc
        return raw.get("policy") or policy_text
