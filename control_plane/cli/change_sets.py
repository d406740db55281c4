"""A stack deployed through a change set: create it, show it, execute it, follow the events.

Stack states (CloudFormation's ``StackStatus``) fall into three groups here:

- no stack, or ``REVIEW_IN_PROGRESS`` (a change set created it and was never executed): the
  change set is of type ``CREATE``;
- a stable state (``CREATE_COMPLETE``, ``UPDATE_COMPLETE``, ``UPDATE_ROLLBACK_COMPLETE``, ...):
  ``UPDATE``;
- anything in progress, ``ROLLBACK_COMPLETE`` (a failed first create, which can only be
  deleted) and the ``*_FAILED`` states: nothing is deployed and the error says what to do.

The pure parts (:func:`failure_message`, :func:`changes_rows`, :func:`event_row`) are kept
apart from the calls so they can be tested on recorded documents.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from control_plane.cli.errors import CommandError

CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
SUCCEEDED = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
UPDATABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
                       "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"})
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_CANCELLED = ("Resource creation cancelled", "Resource update cancelled",
              "Resource deletion cancelled")


@dataclass(frozen=True)
class Change:
    action: str
    logical_id: str
    resource_type: str
    replacement: str


def changes_rows(change_set: Mapping[str, Any]) -> list[Change]:
    """The resource changes of a ``DescribeChangeSet`` answer."""
    rows = []
    for change in change_set.get("Changes", []):
        resource = change.get("ResourceChange") or {}
        rows.append(Change(resource.get("Action", ""), resource.get("LogicalResourceId", ""),
                           resource.get("ResourceType", ""),
                           resource.get("Replacement", "") if resource.get("Action") == "Modify"
                           else ""))
    return rows


def event_row(event: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """One stack event as a table row: time, resource, type, status, reason."""
    stamp = event.get("Timestamp")
    clock = stamp.strftime("%H:%M:%S") if hasattr(stamp, "strftime") else str(stamp or "")
    return (clock, event.get("LogicalResourceId", ""), event.get("ResourceType", ""),
            event.get("ResourceStatus", ""), event.get("ResourceStatusReason", "") or "")


def _root_cause(events: Sequence[Mapping[str, Any]], stack_name: str) -> Mapping[str, Any] | None:
    """The first resource that failed (events oldest first), not a cancelled bystander."""
    failed = [e for e in events if str(e.get("ResourceStatus", "")).endswith("_FAILED")]
    for event in failed:
        reason = event.get("ResourceStatusReason") or ""
        if event.get("LogicalResourceId") != stack_name and not reason.startswith(_CANCELLED):
            return event
    return failed[0] if failed else None


def failure_message(stack: Mapping[str, Any], events: Sequence[Mapping[str, Any]], *,
                    region: str) -> str:
    """Why a deployment ended in ``stack``'s status, and what to do next (events oldest first)."""
    name = stack.get("StackName", "")
    status = stack.get("StackStatus", "")
    cause = _root_cause(events, name)
    if cause is not None:
        why = (f"{cause.get('LogicalResourceId')} ({cause.get('ResourceType')}) "
               f"{cause.get('ResourceStatus')}: {cause.get('ResourceStatusReason') or 'no reason given'}")
    else:
        why = stack.get("StackStatusReason") or "no reason given"
    cli = f"--stack-name {name} --region {region}"
    if status == "ROLLBACK_COMPLETE":
        step = ("nothing was created and a stack in ROLLBACK_COMPLETE can only be deleted: run "
                f"`aws cloudformation delete-stack {cli}`, fix the cause, then deploy again")
    elif status == "UPDATE_ROLLBACK_COMPLETE":
        step = ("the stack is back on its previous template and keeps serving; fix the cause "
                "and deploy again")
    elif status == "UPDATE_ROLLBACK_FAILED":
        step = ("fix or skip the resource that could not roll back, then run "
                f"`aws cloudformation continue-update-rollback {cli}` before deploying again")
    elif status in ("ROLLBACK_FAILED", "DELETE_FAILED"):
        step = (f"delete what is left by hand and then the stack: "
                f"`aws cloudformation delete-stack {cli}`")
    else:
        step = (f"see every event with `aws cloudformation describe-stack-events {cli}`, fix "
                "the cause and deploy again")
    return f"stack {name} ended in {status}: {why}. Next: {step}"


def not_deployable_message(stack: Mapping[str, Any], *, region: str) -> str | None:
    """Why a change set cannot be made for ``stack`` now, or None when it can."""
    name = stack.get("StackName", "")
    status = stack.get("StackStatus", "")
    cli = f"--stack-name {name} --region {region}"
    if status in UPDATABLE or status == "REVIEW_IN_PROGRESS":
        return None
    if status.endswith("_IN_PROGRESS"):
        return (f"stack {name} is {status}; wait until it settles (`aws cloudformation wait "
                f"stack-update-complete {cli}` or watch the console) and deploy again")
    if status == "ROLLBACK_COMPLETE":
        return (f"stack {name} is ROLLBACK_COMPLETE (its first create failed) and can only be "
                f"deleted: `aws cloudformation delete-stack {cli}`, then deploy again")
    if status == "UPDATE_ROLLBACK_FAILED":
        return (f"stack {name} is UPDATE_ROLLBACK_FAILED; run `aws cloudformation "
                f"continue-update-rollback {cli}` first")
    return f"stack {name} is {status} and cannot be updated; see its events in the console"


class StackDeployment:
    """One stack's change-set deployment through a CloudFormation client."""

    def __init__(self, cloudformation: Any, stack_name: str, *, region: str,
                 poll_seconds: float = 3.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.cloudformation = cloudformation
        self.stack_name = stack_name
        self.region = region
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def existing(self) -> dict[str, Any] | None:
        """The stack, or None when there is none (deleted stacks do not count)."""
        try:
            stacks = self.cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        live = [s for s in stacks if s.get("StackStatus") != "DELETE_COMPLETE"]
        return live[0] if live else None

    def deployed_template(self) -> Any:
        """The template the stack runs (botocore hands JSON bodies over parsed)."""
        return self.cloudformation.get_template(StackName=self.stack_name,
                                                TemplateStage="Original")["TemplateBody"]

    def create_change_set(self, name: str, *, change_set_type: str, template: Mapping[str, str],
                          parameters: list[dict[str, Any]], description: str) -> None:
        self.cloudformation.create_change_set(
            StackName=self.stack_name, ChangeSetName=name, ChangeSetType=change_set_type,
            Parameters=parameters, Capabilities=list(CAPABILITIES), Description=description,
            **template)

    def wait_for_change_set(self, name: str) -> dict[str, Any] | None:
        """The change set with all its changes once created; None when it has no changes."""
        while True:
            answer = self.cloudformation.describe_change_set(ChangeSetName=name,
                                                             StackName=self.stack_name)
            status = answer.get("Status", "")
            if status == "FAILED":
                reason = answer.get("StatusReason", "") or ""
                if any(marker in reason for marker in _NO_CHANGES):
                    self.cloudformation.delete_change_set(ChangeSetName=name,
                                                          StackName=self.stack_name)
                    return None
                raise CommandError(f"change set {name} could not be created: {reason}. Next: "
                                   "fix the template or parameters it names and deploy again")
            if status == "CREATE_COMPLETE":
                changes = list(answer.get("Changes", []))
                token = answer.get("NextToken")
                while token:
                    page = self.cloudformation.describe_change_set(
                        ChangeSetName=name, StackName=self.stack_name, NextToken=token)
                    changes += page.get("Changes", [])
                    token = page.get("NextToken")
                return {**answer, "Changes": changes}
            self.sleep(min(self.poll_seconds, 2.0))

    def event_ids(self) -> set[str]:
        """The events the stack has now (the newest page), to tell later ones apart."""
        try:
            page = self.cloudformation.describe_stack_events(StackName=self.stack_name)
        except ClientError:
            return set()
        return {e["EventId"] for e in page.get("StackEvents", [])}

    def execute(self, name: str) -> None:
        self.cloudformation.execute_change_set(ChangeSetName=name, StackName=self.stack_name)

    def follow(self, seen: set[str]) -> Iterator[tuple[dict[str, Any] | None,
                                                      list[dict[str, Any]]]]:
        """Yield ``(None, new events oldest first)`` while the stack changes, then
        ``(stack, every event of this deployment)`` once it reaches a settled state."""
        history: list[dict[str, Any]] = []
        while True:
            stack = self.existing() or {"StackName": self.stack_name,
                                        "StackStatus": "DELETE_COMPLETE"}
            fresh = self._new_events(seen)
            history += fresh
            settled = not str(stack.get("StackStatus", "")).endswith("_IN_PROGRESS")
            if fresh:
                yield None, fresh
            if settled:
                yield stack, history
                return
            self.sleep(self.poll_seconds)

    def _new_events(self, seen: set[str]) -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        paginator = self.cloudformation.get_paginator("describe_stack_events")
        for page in paginator.paginate(StackName=self.stack_name):
            events = page.get("StackEvents", [])
            new = [e for e in events if e["EventId"] not in seen]
            fresh += new
            if len(new) < len(events):
                break
        for event in fresh:
            seen.add(event["EventId"])
        return list(reversed(fresh))
