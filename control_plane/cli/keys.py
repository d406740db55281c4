"""``turnout keys``: issue, list and revoke the API keys clients send as ``x-api-key``.

A route with ``security.api_key_required`` has a usage plan (``turnout-<route_id>``) once the
control plane has reconciled it; ``keys create`` makes an enabled key with a random value,
tags it with the route and REST API (so the control plane can put it back into a plan it
has to recreate) and adds it to that plan. The value is printed once, on standard output,
and nowhere else: ``keys list`` never shows it and nothing is logged.

As on API Gateway, a key identifies and throttles a client: API Gateway admits an enabled key
that is in any usage plan of the stage on every method that requires a key, so a key issued
for one route is also accepted by the stage's other API-key routes (each route's own
``allowed_cidrs`` still apply). Use separate stacks (stages) to separate clients completely.
"""

from __future__ import annotations

import argparse
import secrets
import string
from datetime import UTC, datetime

from control_plane.cli import render
from control_plane.cli.errors import CommandError
from control_plane.cli.parser import add_aws_options, add_command_group, add_output_option
from control_plane.plan.security import (
    REST_API_TAG,
    ROUTE_TAG,
    owns_plan,
    plan_name,
)

KEY_LENGTH = 40  # 40 letters and digits: about 238 bits
_ALPHABET = string.ascii_letters + string.digits
PAGE_SIZE = 500


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``turnout keys <command>``."""
    keys = add_command_group(commands, "keys", "Issue, list and revoke API keys for routes.")

    create = keys.add_parser(
        "create", help="Issue an API key for a route; prints its value once.",
        description="Create an enabled API key with a random value and add it to the route's "
                    "usage plan. The route must set security.api_key_required and be READY. "
                    "The value is printed once on standard output: store it now.",
    )
    create.add_argument("--route", required=True, metavar="ROUTE_ID",
                        help="the route the key is for")
    create.add_argument("--name", help="a name for the key (default: <route>-<UTC time>)")
    add_output_option(create, "text", "json")
    _add_api_options(create)
    create.set_defaults(handler=run_create)

    listing = keys.add_parser("list", help="List issued API keys (never their values).")
    listing.add_argument("--route", metavar="ROUTE_ID", help="only this route's keys")
    add_output_option(listing, "table", "json")
    _add_api_options(listing)
    listing.set_defaults(handler=run_list)

    revoke = keys.add_parser("revoke", help="Disable and delete an API key.")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id (from `keys list`)")
    _add_api_options(revoke)
    revoke.set_defaults(handler=run_revoke)


def _add_api_options(parser: argparse.ArgumentParser) -> None:
    add_aws_options(parser)
    parser.add_argument("--rest-api-id", metavar="ID",
                        help="the turnout REST API (default: the stack's RestApiId output)")


class _Keys:
    """The API Gateway calls the commands make, with errors as one line."""

    def __init__(self, args: argparse.Namespace) -> None:
        from control_plane.cli.aws import AwsContext

        self.context = AwsContext.from_args(args)
        self.client = self.context.client("apigateway")
        self._rest_api_id = getattr(args, "rest_api_id", None)

    def errors(self):
        from control_plane.cli.aws import aws_errors

        return aws_errors(self.context)

    @property
    def rest_api_id(self) -> str:
        if not self._rest_api_id:
            self._rest_api_id = self.context._output("RestApiId", "--rest-api-id")
        return self._rest_api_id

    def route_plan(self, route_id: str) -> dict | None:
        with self.errors():
            pages = self.client.get_paginator("get_usage_plans").paginate(
                PaginationConfig={"PageSize": PAGE_SIZE})
            plans = [p for page in pages for p in page.get("items", [])]
        mine = [p for p in plans if p.get("name") == plan_name(route_id)
                and owns_plan(p, self.rest_api_id)]
        return min(mine, key=lambda p: p["id"]) if mine else None

    def turnout_keys(self) -> list[dict]:
        with self.errors():
            pages = self.client.get_paginator("get_api_keys").paginate(
                includeValues=False, PaginationConfig={"PageSize": PAGE_SIZE})
            keys = [k for page in pages for k in page.get("items", [])]
        api = self.rest_api_id
        return [k for k in keys if (k.get("tags") or {}).get(REST_API_TAG) == api
                and (k.get("tags") or {}).get(ROUTE_TAG)]


def run_create(args: argparse.Namespace) -> int:
    keys = _Keys(args)
    plan = keys.route_plan(args.route)
    if plan is None:
        raise CommandError(
            f"route {args.route!r} has no usage plan on REST API {keys.rest_api_id}, so it "
            "takes no API keys",
            next_step="set security.api_key_required: true on the route, apply it with "
                      f"`turnout routes apply FILE --wait`, and check that `turnout routes status "
                      f"{args.route}` shows READY",
        )
    value = "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))
    name = args.name or f"{args.route}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    with keys.errors():
        created = keys.client.create_api_key(
            name=name, enabled=True, value=value,
            description=f"turnout key for route {args.route}",
            tags={ROUTE_TAG: args.route, REST_API_TAG: keys.rest_api_id},
        )
    key_id = created["id"]
    try:
        with keys.errors():
            keys.client.create_usage_plan_key(usagePlanId=plan["id"], keyId=key_id,
                                              keyType="API_KEY")
    except CommandError:
        with keys.errors():
            keys.client.delete_api_key(apiKey=key_id)
        raise
    if args.output == "json":
        print(render.to_json({"id": key_id, "name": name, "route": args.route,
                              "value": value}))
    else:
        print(f"id:    {key_id}")
        print(f"name:  {name}")
        print(f"route: {args.route}")
        print(f"value: {value}")
        print("This is the only time the value is shown; send it as the x-api-key header.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    keys = _Keys(args)
    found = keys.turnout_keys()
    if args.route:
        found = [k for k in found if k["tags"][ROUTE_TAG] == args.route]
    rows = [
        {"id": k["id"], "name": k.get("name"), "route": k["tags"][ROUTE_TAG],
         "enabled": bool(k.get("enabled")), "created": _time(k.get("createdDate"))}
        for k in sorted(found, key=lambda k: (k["tags"][ROUTE_TAG], str(k.get("createdDate")),
                                              k["id"]))
    ]
    if args.output == "json":
        print(render.to_json(rows))
    else:
        print(render.table(("ID", "NAME", "ROUTE", "ENABLED", "CREATED"),
                           [(r["id"], r["name"], r["route"], str(r["enabled"]).lower(),
                             r["created"]) for r in rows]))
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    keys = _Keys(args)
    with keys.errors():
        try:
            key = keys.client.get_api_key(apiKey=args.key_id, includeValue=False)
        except keys.client.exceptions.NotFoundException:
            raise CommandError(f"no API key {args.key_id!r}",
                               next_step="see the keys there are with `turnout keys list`"
                               ) from None
    tags = key.get("tags") or {}
    if tags.get(REST_API_TAG) != keys.rest_api_id or not tags.get(ROUTE_TAG):
        raise CommandError(f"API key {args.key_id!r} was not issued by `turnout keys create` "
                           f"for REST API {keys.rest_api_id}; it was left as it is",
                           next_step="revoke only keys `turnout keys list` shows; delete "
                                     "others with `aws apigateway delete-api-key --api-key "
                                     f"{args.key_id}` if you mean to")
    with keys.errors():
        keys.client.update_api_key(apiKey=args.key_id, patchOperations=[
            {"op": "replace", "path": "/enabled", "value": "false"}])
        keys.client.delete_api_key(apiKey=args.key_id)
    print(f"revoked {args.key_id} (route {tags[ROUTE_TAG]})")
    return 0


def _time(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return None if value is None else str(value)
