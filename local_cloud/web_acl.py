"""``AWS::WAFv2::WebACL`` for the local cloud, created through the ``wafv2`` API.

moto's CloudFormation skips WAFv2 resources (and crashes on a ``GetAtt`` of one), but its
``wafv2`` API stores web ACLs and their associations with API Gateway stages. The web ACL is
upserted by name: a redeploy finds the first deploy's ACL and updates its rules, default
action and visibility when the template changed them. Its rules are stored, not run: the
local gateway does not apply WAF rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_cloud.clients import AwsClients
from local_cloud.moto_template import ResourceValues

_INTEGERS = frozenset({"Priority", "Limit", "EvaluationWindowSec", "ImmunityTime",
                       "ResponseCode", "Size"})
_BOOLEANS = frozenset({"SampledRequestsEnabled", "CloudWatchMetricsEnabled"})
_UPDATABLE = ("DefaultAction", "Rules", "VisibilityConfig", "Description",
              "CustomResponseBodies", "CaptchaConfig", "ChallengeConfig", "TokenDomains",
              "AssociationConfig")


def _typed(value: Any, key: str | None = None) -> Any:
    """Template values are strings where a parameter was referenced; the API wants types."""
    if isinstance(value, Mapping):
        return {k: _typed(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if key in _INTEGERS and isinstance(value, str):
        return int(float(value))
    if key in _BOOLEANS and isinstance(value, str):
        return value.strip().lower() == "true"
    return value


def _values(acl: Mapping[str, Any]) -> ResourceValues:
    ref = f"{acl['Name']}|{acl['Id']}|REGIONAL"
    return ResourceValues(ref=ref, attributes={"Arn": acl["ARN"], "Id": acl["Id"]})


def create_web_acl(aws: AwsClients, logical_id: str, properties: Mapping[str, Any],
                   naming) -> ResourceValues:
    """Create the web ACL, or bring the one of an earlier deploy up to date."""
    wafv2 = aws("wafv2")
    wanted = _typed(dict(properties))
    name = wanted.get("Name") or naming.physical_name(logical_id)
    scope = wanted.get("Scope", "REGIONAL")
    existing = next((acl for acl in wafv2.list_web_acls(Scope=scope).get("WebACLs", [])
                     if acl["Name"] == name), None)
    if existing is None:
        request = {k: wanted[k] for k in _UPDATABLE if k in wanted}
        request.setdefault("Rules", [])
        tags = [{"Key": t["Key"], "Value": str(t["Value"])} for t in wanted.get("Tags") or []]
        if tags:
            request["Tags"] = tags
        summary = wafv2.create_web_acl(Name=name, Scope=scope, **request)["Summary"]
        return _values(summary)
    current = wafv2.get_web_acl(Name=name, Scope=scope, Id=existing["Id"])
    acl = current["WebACL"]
    changes = {k: wanted[k] for k in _UPDATABLE if k in wanted and acl.get(k) != wanted[k]}
    if changes:
        update = {k: wanted.get(k, acl.get(k)) for k in ("DefaultAction", "Rules",
                                                          "VisibilityConfig")}
        update.update({k: wanted[k] for k in _UPDATABLE if k in wanted})
        wafv2.update_web_acl(Name=name, Scope=scope, Id=existing["Id"],
                             LockToken=current["LockToken"], **update)
    return _values(existing)
