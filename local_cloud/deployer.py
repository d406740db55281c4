"""Deploy the stack's CloudFormation template into the embedded AWS.

:func:`deploy_stack` does what ``aws cloudformation package`` + ``deploy`` do, through moto's
CloudFormation, plus what moto leaves undone:

1. package: local ``Code`` paths become an artifact in the local S3 (:mod:`.packaging`);
2. resources of types moto ignores are created through the service APIs (:mod:`.post_steps`):
   before the stack when they depend on nothing in it (their values are then written into
   the template moto sees), after it otherwise;
3. the template is adapted to moto without changing its AWS meaning (:mod:`.moto_template`)
   and created or updated; an unchanged template and parameters make no update;
4. properties moto drops on the resources it did create are applied (DynamoDB TTL, ...);
5. the outputs are evaluated from the deployed resources (:mod:`.intrinsics`,
   :mod:`.stack_values`), since moto drops or garbles some.
"""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_cloud.clients import AwsClients
from local_cloud.intrinsics import Evaluator, UnresolvableError, references
from local_cloud.moto_template import (
    ResourceValues,
    TemplateNotSupportedLocally,
    adapt_for_moto,
    deferred_resources,
)
from local_cloud.packaging import DEFAULT_PACKAGES, find_source_root, package_template
from local_cloud.post_steps import COMPLETERS, CREATORS, Naming
from local_cloud.stack_values import StackValues
from local_cloud.template import load_template

ProgressCallback = Callable[[str], None]
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
STACK_TIMEOUT_SECONDS = 120.0


class DeployError(RuntimeError):
    """The stack could not be deployed locally; the message says why."""


def _quiet(message: str) -> None:
    return None


def deploy_stack(
    template_path: str | Path,
    stack_name: str = "turnout",
    parameters: Mapping[str, Any] | None = None,
    *,
    endpoint_url: str,
    region: str = "us-east-1",
    source_root: str | Path | None = None,
    packages: tuple[str, ...] = DEFAULT_PACKAGES,
    on_progress: ProgressCallback | None = None,
) -> dict[str, str]:
    """Create or update ``stack_name`` from the template; returns the stack's outputs."""
    progress = on_progress or _quiet
    template_path = Path(template_path).resolve()
    aws = AwsClients(endpoint_url, region)
    try:
        template = load_template(template_path)
        root = Path(source_root) if source_root else find_source_root(template_path.parent,
                                                                       packages)
        return _Deployment(aws, template, template_path.parent, stack_name,
                           dict(parameters or {}), progress).run(root, packages)
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"deploying {stack_name}: {exc}") from exc
    except (TemplateNotSupportedLocally, UnresolvableError, FileNotFoundError) as exc:
        raise DeployError(f"deploying {stack_name}: {exc}") from exc


def prepare_for_moto(
    template: dict[str, Any],
    *,
    template_dir: str | Path,
    stack_name: str,
    parameters: Mapping[str, Any] | None = None,
    endpoint_url: str,
    region: str = "us-east-1",
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """An already packaged ``template`` as moto's CloudFormation takes it, for submitting it
    through the CloudFormation API directly (as ``turnout deploy`` does) rather than through
    :func:`deploy_stack`. The resources moto ignores that stack resources refer to are created
    first, as :func:`deploy_stack` does; the ones it creates after the stack are not."""
    aws = AwsClients(endpoint_url, region)
    deployment = _Deployment(aws, template, Path(template_dir), stack_name,
                             dict(parameters or {}), on_progress or _quiet)
    try:
        adapted, _ = deployment.prepare(deployment._pseudo_parameters())
    except (ClientError, BotoCoreError, TemplateNotSupportedLocally, UnresolvableError) as exc:
        raise DeployError(f"preparing {stack_name} for the local cloud: {exc}") from exc
    return adapted


def _parameter_text(value: Any) -> Any:
    """A deployed parameter's value as it was given: moto reports a list parameter
    (``CommaDelimitedList``) as the repr of a Python list, ``"['a', 'b']"``."""
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            items = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        if isinstance(items, list):
            return ",".join(str(item) for item in items)
    return value


class _Deployment:
    def __init__(self, aws: AwsClients, template: dict[str, Any], template_dir: Path,
                 stack_name: str, parameters: dict[str, Any], progress: ProgressCallback) -> None:
        self.aws = aws
        self.template = template
        self.template_dir = template_dir
        self.stack_name = stack_name
        self.parameters = self._resolve_parameters(parameters)
        self.progress = progress
        self.naming = Naming(stack_name)
        self.created: dict[str, ResourceValues] = {}

    def run(self, source_root: Path, packages: tuple[str, ...]) -> dict[str, str]:
        self.progress(f"packaging {', '.join(packages)} from {source_root}")
        self.template = package_template(self.template, s3=self.aws("s3"),
                                          source_root=source_root, packages=packages,
                                          on_progress=self.progress)
        pseudo = self._pseudo_parameters()
        adapted, after = self.prepare(pseudo)
        stack = self._submit(adapted)
        pseudo["AWS::StackId"] = stack["StackId"]
        physical_ids = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in self.aws("cloudformation").describe_stack_resources(
                StackName=self.stack_name)["StackResources"]
        }
        values = StackValues(self.aws, resources=self.template["Resources"],
                             physical_ids=physical_ids, created=self.created,
                             name_property=lambda lid, prop: evaluator.evaluate(
                                 self.template["Resources"][lid].get("Properties", {}).get(prop)))
        evaluator = Evaluator(self.template, parameters=self.parameters, pseudo=pseudo,
                              resources=values)
        self._complete(physical_ids, evaluator)
        self._create(after, evaluator, values)
        return self._outputs(evaluator, stack)

    def prepare(self, pseudo: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Create what must exist before the stack; the template moto takes, and what must be
        created after the stack."""
        deferred = self._deferred_in_scope(pseudo)
        before, after = self._phases(deferred)
        early = Evaluator(self.template, parameters=self.parameters, pseudo=pseudo,
                          resources=self._created_only)
        self._create(before, early)
        conditions = {}
        for name in self.template.get("Conditions") or {}:
            try:
                conditions[name] = early.condition(name)
            except UnresolvableError:
                continue
        adapted = adapt_for_moto(self.template, created_before=self.created,
                                 template_dir=self.template_dir,
                                 read_s3_object=self._read_s3_object, conditions=conditions)
        return adapted, after

    def _resolve_parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        declared = self.template.get("Parameters") or {}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise DeployError(f"unknown parameter(s): {', '.join(unknown)}")
        resolved: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in given:
                value = given[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise DeployError(f"parameter {name} needs a value")
            if str(spec.get("Type", "String")).startswith(("List<", "CommaDelimitedList")):
                value = value if isinstance(value, list) else str(value).split(",")
            else:
                value = str(value)
            resolved[name] = value
        return resolved

    def _pseudo_parameters(self) -> dict[str, Any]:
        account = self.aws("sts").get_caller_identity()["Account"]
        return {
            "AWS::AccountId": account,
            "AWS::Region": self.aws.region,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }

    def _deferred_in_scope(self, pseudo: dict[str, Any]) -> dict[str, dict[str, Any]]:
        conditions = Evaluator(self.template, parameters=self.parameters, pseudo=pseudo,
                               resources=self._created_only)
        deferred = {}
        for name, resource in deferred_resources(self.template).items():
            condition = resource.get("Condition")
            if condition and not conditions.condition(condition):
                continue
            if resource.get("Type") not in CREATORS:
                self.progress(f"{name} ({resource.get('Type')}): not emulated locally, skipped")
                continue
            deferred[name] = resource
        return deferred

    def _phases(self, deferred: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
        resources = set(self.template["Resources"])
        needs = {
            name: (references(resource.get("Properties") or {})
                   | set(_depends_on(resource))) & resources
            for name, resource in deferred.items()
        }
        before: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, wanted in needs.items():
                if name not in before and wanted <= before:
                    before.add(name)
                    changed = True
        order = _dependency_order(needs)
        return ([n for n in order if n in before], [n for n in order if n not in before])

    def _created_only(self, logical_id: str, attribute: str | None) -> Any:
        if logical_id not in self.created:
            raise UnresolvableError(f"{logical_id} does not exist before the stack")
        values = self.created[logical_id]
        if attribute is None:
            return values.ref
        if attribute not in values.attributes:
            raise UnresolvableError(f"{logical_id}.{attribute}")
        return values.attributes[attribute]

    def _create(self, names: list[str], evaluator: Evaluator,
                values: StackValues | None = None) -> None:
        for name in names:
            resource = self.template["Resources"][name]
            properties = evaluator.evaluate(resource.get("Properties") or {})
            created = CREATORS[resource["Type"]](self.aws, name, properties, self.naming)
            self.created[name] = created
            if values is not None:
                values.add(name, created)
            self.progress(f"{name} ({resource['Type']}): created through the API")

    def _read_s3_object(self, bucket: str, key: str) -> bytes:
        return self.aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def _submit(self, adapted: dict[str, Any]) -> dict[str, Any]:
        cloudformation = self.aws("cloudformation")
        body = json.dumps(adapted, sort_keys=True)
        parameters = [
            {"ParameterKey": k, "ParameterValue": ",".join(v) if isinstance(v, list) else v}
            for k, v in self.parameters.items()
        ]
        existing = self._existing_stack()
        if existing is None:
            self.progress(f"creating stack {self.stack_name}")
            cloudformation.create_stack(StackName=self.stack_name, TemplateBody=body,
                                        Parameters=parameters, Capabilities=CAPABILITIES)
        elif self._unchanged(existing, adapted, parameters):
            self.progress(f"stack {self.stack_name} is up to date")
            return existing
        else:
            self.progress(f"updating stack {self.stack_name}")
            cloudformation.update_stack(StackName=self.stack_name, TemplateBody=body,
                                        Parameters=parameters, Capabilities=CAPABILITIES)
        stack = self._wait_for_stack()
        self.progress(f"stack {self.stack_name}: {stack['StackStatus']}")
        return stack

    def _existing_stack(self) -> dict[str, Any] | None:
        try:
            stacks = self.aws("cloudformation").describe_stacks(
                StackName=self.stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
        return live[0] if live else None

    def _unchanged(self, stack: Mapping[str, Any], adapted: dict[str, Any],
                   parameters: list[dict[str, str]]) -> bool:
        current = self.aws("cloudformation").get_template(
            StackName=self.stack_name)["TemplateBody"]
        if isinstance(current, str):
            current = json.loads(current)
        deployed = {p["ParameterKey"]: _parameter_text(p.get("ParameterValue"))
                    for p in stack.get("Parameters", [])}
        wanted = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
        return json.loads(json.dumps(current)) == json.loads(json.dumps(adapted)) and (
            deployed == wanted)

    def _wait_for_stack(self) -> dict[str, Any]:
        deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
        while True:
            stack = self.aws("cloudformation").describe_stacks(
                StackName=self.stack_name)["Stacks"][0]
            status = stack["StackStatus"]
            if status.endswith("_FAILED") or "ROLLBACK" in status:
                reason = stack.get("StackStatusReason", "")
                raise DeployError(f"stack {self.stack_name}: {status} {reason}".strip())
            if not status.endswith("_IN_PROGRESS"):
                return stack
            if time.monotonic() > deadline:
                raise DeployError(f"stack {self.stack_name} still {status}")
            time.sleep(0.2)

    def _complete(self, physical_ids: Mapping[str, str], evaluator: Evaluator) -> None:
        for name, resource in self.template["Resources"].items():
            completer = COMPLETERS.get(resource.get("Type", ""))
            if completer is None or not physical_ids.get(name):
                continue
            try:
                properties = evaluator.evaluate(resource.get("Properties") or {})
            except UnresolvableError as exc:
                self.progress(f"{name}: properties moto ignores were not applied ({exc})")
                continue
            message = completer(self.aws, name, properties, physical_ids[name])
            if message:
                self.progress(message)

    def _outputs(self, evaluator: Evaluator, stack: Mapping[str, Any]) -> dict[str, str]:
        from_moto = {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])}
        outputs: dict[str, str] = {}
        for name, output in (self.template.get("Outputs") or {}).items():
            condition = output.get("Condition")
            if condition and not evaluator.condition(condition):
                continue
            try:
                value = evaluator.evaluate(output.get("Value"))
            except UnresolvableError as exc:
                if from_moto.get(name):
                    outputs[name] = from_moto[name]
                else:
                    self.progress(f"output {name} is not available locally ({exc})")
                continue
            outputs[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        return outputs


def _depends_on(resource: Mapping[str, Any]) -> list[str]:
    depends = resource.get("DependsOn") or []
    return [depends] if isinstance(depends, str) else list(depends)


def _dependency_order(needs: Mapping[str, set[str]]) -> list[str]:
    order: list[str] = []
    placed: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in placed:
            return
        if name in path:
            raise DeployError(f"circular dependency: {' -> '.join((*path, name))}")
        for other in sorted(needs.get(name, set()) & set(needs)):
            visit(other, (*path, name))
        placed.add(name)
        order.append(name)

    for name in sorted(needs):
        visit(name, ())
    return order
