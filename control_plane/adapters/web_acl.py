"""The association of the stack's WAF web ACL with the API stage (``wafv2``).

CloudFormation cannot associate the web ACL because the reconciler, not the template,
creates the stage; the reconciler does it after deploying, when it is not already done.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import translate


def stage_arn(region: str, rest_api_id: str, stage_name: str) -> str:
    """The ARN WAF uses for an API Gateway REST API stage."""
    return f"arn:aws:apigateway:{region}::/restapis/{rest_api_id}/stages/{stage_name}"


class WebAclAdapter:
    def __init__(self, client) -> None:
        self.client = client

    def associated_acl(self, resource_arn: str) -> str | None:
        """The ARN of the web ACL protecting ``resource_arn`` (None: none)."""
        try:
            raw = self.client.get_web_acl_for_resource(ResourceArn=resource_arn)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="GetWebACLForResource") from exc
        acl = raw.get("WebACL") or {}
        return acl.get("ARN")

    def associate(self, web_acl_arn: str, resource_arn: str) -> None:
        try:
            self.client.associate_web_acl(WebACLArn=web_acl_arn, ResourceArn=resource_arn)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="AssociateWebACL") from exc
