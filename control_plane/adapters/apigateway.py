"""API Gateway adapter: observe the turnout REST API and apply planned actions.

The adapter keeps the :class:`ObservedApi` it read up to date as it applies actions, so a
batch of routes costs one observation (a paginated ``GetResources``, ``GetStage`` and
``GetDeployment``) plus exactly the writes its plans contain. Every botocore failure leaves
through :func:`control_plane.adapters.aws_errors.translate`.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import error_code, translate
from control_plane.plan.apigateway import (
    Action,
    CreateResource,
    DeleteMethod,
    DeleteResource,
    MethodSpec,
    ObservedApi,
    ObservedIntegration,
    ObservedMethod,
    ObservedResource,
    ObservedStage,
    PutIntegration,
    PutMethod,
    ReplaceMethod,
    parent_path,
)

DEPLOYMENT_PREFIX = "turnout:"


def _parse_method(raw: dict) -> ObservedMethod:
    integ = raw.get("methodIntegration")
    integration = None
    if integ:
        integration = ObservedIntegration(
            type=integ.get("type", ""),
            uri=integ.get("uri", ""),
            http_method=integ.get("httpMethod"),
            timeout_ms=int(integ.get("timeoutInMillis") or 29000),
            request_parameters=dict(integ.get("requestParameters") or {}),
            connection_type=integ.get("connectionType") or "INTERNET",
            connection_id=integ.get("connectionId"),
            integration_target=integ.get("integrationTarget"),
        )
    return ObservedMethod(
        http_method=raw["httpMethod"],
        api_key_required=bool(raw.get("apiKeyRequired", False)),
        operation_name=raw.get("operationName"),
        request_parameters={k: bool(v) for k, v in (raw.get("requestParameters") or {}).items()},
        integration=integration,
    )


class ApiGatewayAdapter:
    def __init__(self, client, rest_api_id: str, stage_name: str) -> None:
        self.client = client
        self.rest_api_id = rest_api_id
        self.stage_name = stage_name

    # ---- observe --------------------------------------------------------------------

    def observe(self) -> ObservedApi:
        try:
            resources: dict[str, ObservedResource] = {}
            paginator = self.client.get_paginator("get_resources")
            for page in paginator.paginate(restApiId=self.rest_api_id, embed=["methods"],
                                           PaginationConfig={"PageSize": 500}):
                for item in page.get("items", []):
                    methods = {
                        name: _parse_method({"httpMethod": name, **raw})
                        for name, raw in (item.get("resourceMethods") or {}).items()
                    }
                    resources[item["path"]] = ObservedResource(
                        id=item["id"],
                        parent_id=item.get("parentId"),
                        path=item["path"],
                        path_part=item.get("pathPart", ""),
                        methods=methods,
                    )
            stage = self._observe_stage()
            policy = self.client.get_rest_api(restApiId=self.rest_api_id).get("policy") or None
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="observe API") from exc
        return ObservedApi(rest_api_id=self.rest_api_id, resources=resources, stage=stage,
                           policy=policy)

    def _observe_stage(self) -> ObservedStage | None:
        try:
            raw = self.client.get_stage(restApiId=self.rest_api_id, stageName=self.stage_name)
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return None
            raise
        deployment_id = raw.get("deploymentId")
        description = ""
        if deployment_id:
            try:
                dep = self.client.get_deployment(restApiId=self.rest_api_id, deploymentId=deployment_id)
                description = dep.get("description") or ""
            except ClientError as exc:
                if error_code(exc) != "NotFoundException":
                    raise
        return ObservedStage(
            name=self.stage_name,
            deployment_id=deployment_id,
            deployment_description=description,
            variables=dict(raw.get("variables") or {}),
        )

    # ---- apply ----------------------------------------------------------------------

    def apply(self, actions: tuple[Action, ...] | list[Action], observed: ObservedApi) -> None:
        for action in actions:
            try:
                self._apply_one(action, observed)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, action=type(action).__name__) from exc

    def _apply_one(self, action: Action, observed: ObservedApi) -> None:
        api = self.rest_api_id
        if isinstance(action, CreateResource):
            parent = observed.resources[parent_path(action.path)]
            part = action.path.rsplit("/", 1)[1]
            try:
                raw = self.client.create_resource(restApiId=api, parentId=parent.id, pathPart=part)
            except ClientError as exc:
                if error_code(exc) != "ConflictException":
                    raise
                # Created by an earlier, interrupted run: adopt it.
                observed.resources.update(self.observe().resources)
                return
            observed.resources[action.path] = ObservedResource(
                id=raw["id"], parent_id=parent.id, path=action.path, path_part=part
            )
        elif isinstance(action, PutMethod | ReplaceMethod):
            resource = observed.resources[action.spec.path]
            if isinstance(action, ReplaceMethod) or action.spec.http_method in resource.methods:
                self._delete_method(resource, action.spec.http_method)
            self._put_method(resource, action.spec)
            self._put_integration(resource, action.spec)
        elif isinstance(action, PutIntegration):
            resource = observed.resources[action.spec.path]
            self._put_integration(resource, action.spec)
        elif isinstance(action, DeleteMethod):
            resource = observed.resources.get(action.path)
            if resource is not None:
                self._delete_method(resource, action.http_method)
        elif isinstance(action, DeleteResource):
            resource = observed.resources.get(action.path)
            if resource is not None:
                try:
                    self.client.delete_resource(restApiId=api, resourceId=resource.id)
                except ClientError as exc:
                    if error_code(exc) != "NotFoundException":
                        raise
                for path in [p for p in observed.resources if p == action.path
                             or p.startswith(action.path + "/")]:
                    del observed.resources[path]
        else:  # pragma: no cover - exhaustive over Action
            raise TypeError(f"unknown action {action!r}")

    def _put_method(self, resource: ObservedResource, spec: MethodSpec) -> None:
        kwargs = dict(
            restApiId=self.rest_api_id,
            resourceId=resource.id,
            httpMethod=spec.http_method,
            authorizationType="NONE",
            apiKeyRequired=spec.api_key_required,
            operationName=spec.operation_name,
        )
        if spec.request_parameters:
            kwargs["requestParameters"] = dict(spec.request_parameters)
        self.client.put_method(**kwargs)
        resource.methods[spec.http_method] = ObservedMethod(
            http_method=spec.http_method,
            api_key_required=spec.api_key_required,
            operation_name=spec.operation_name,
            request_parameters=dict(spec.request_parameters),
            integration=None,
        )

    def _put_integration(self, resource: ObservedResource, spec: MethodSpec) -> None:
        integ = spec.integration
        kwargs = dict(
            restApiId=self.rest_api_id,
            resourceId=resource.id,
            httpMethod=spec.http_method,
            type=integ.type,
            integrationHttpMethod=integ.http_method,
            uri=integ.uri,
            timeoutInMillis=integ.timeout_ms,
            connectionType=integ.connection_type,
        )
        if integ.request_parameters:
            kwargs["requestParameters"] = dict(integ.request_parameters)
        if integ.connection_id:
            kwargs["connectionId"] = integ.connection_id
        if integ.integration_target:
            kwargs["integrationTarget"] = integ.integration_target
        self.client.put_integration(**kwargs)
        resource.methods[spec.http_method].integration = ObservedIntegration(
            type=integ.type,
            uri=integ.uri,
            http_method=integ.http_method,
            timeout_ms=integ.timeout_ms,
            request_parameters=dict(integ.request_parameters),
            connection_type=integ.connection_type,
            connection_id=integ.connection_id,
            integration_target=integ.integration_target,
        )

    def _delete_method(self, resource: ObservedResource, http_method: str) -> None:
        try:
            self.client.delete_method(
                restApiId=self.rest_api_id, resourceId=resource.id, httpMethod=http_method
            )
        except ClientError as exc:
            if error_code(exc) != "NotFoundException":
                raise
        resource.methods.pop(http_method, None)

    # ---- stage ----------------------------------------------------------------------

    def update_stage_variables(self, changes: dict[str, str | None], observed: ObservedApi) -> None:
        """Set (value) or remove (None) stage variables in one UpdateStage call."""
        stage = observed.stage
        if stage is None or not changes:
            return
        ops = []
        for name, value in sorted(changes.items()):
            if value is None:
                if name in stage.variables:
                    ops.append({"op": "remove", "path": f"/variables/{name}"})
            elif stage.variables.get(name) != value:
                ops.append({"op": "replace", "path": f"/variables/{name}", "value": value})
        if not ops:
            return
        try:
            self.client.update_stage(restApiId=self.rest_api_id, stageName=self.stage_name,
                                     patchOperations=ops)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="UpdateStage") from exc
        for name, value in changes.items():
            if value is None:
                stage.variables.pop(name, None)
            else:
                stage.variables[name] = value

    def deploy(self, observed: ObservedApi, variables: dict[str, str]) -> None:
        """Snapshot the API in one CreateDeployment and point the stage at it.

        A new stage is created by the deployment itself, with ``variables``. An existing stage
        is moved with ``UpdateStage /deploymentId``, never recreated, so its variables (the
        active upstream of every route) and settings are left exactly as they are.
        """
        description = DEPLOYMENT_PREFIX + observed.fingerprint()
        try:
            if observed.stage is None:
                raw = self.client.create_deployment(restApiId=self.rest_api_id,
                                                    stageName=self.stage_name,
                                                    description=description,
                                                    variables=dict(variables))
                observed.stage = ObservedStage(self.stage_name, raw.get("id"), description,
                                               dict(variables))
                return
            raw = self.client.create_deployment(restApiId=self.rest_api_id, description=description)
            self.client.update_stage(
                restApiId=self.rest_api_id, stageName=self.stage_name,
                patchOperations=[{"op": "replace", "path": "/deploymentId", "value": raw["id"]}],
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action="CreateDeployment") from exc
        observed.stage.deployment_id = raw.get("id")
        observed.stage.deployment_description = description

    def needs_deployment(self, observed: ObservedApi) -> bool:
        if observed.method_count() == 0:
            return False
        if observed.stage is None:
            return True
        return observed.stage.deployment_description != DEPLOYMENT_PREFIX + observed.fingerprint()

    def delete_stage(self, observed: ObservedApi) -> None:
        if observed.stage is None:
            return
        try:
            self.client.delete_stage(restApiId=self.rest_api_id, stageName=self.stage_name)
        except ClientError as exc:
            if error_code(exc) != "NotFoundException":
                raise translate(exc, action="DeleteStage") from exc
        except BotoCoreError as exc:
            raise translate(exc, action="DeleteStage") from exc
        observed.stage = None
