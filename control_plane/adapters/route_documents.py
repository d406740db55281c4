"""Every route item of the routes table as a plain document (one paginated ``Scan``).

For readers that need every route at once (the prober); the reconciler reads routes one by
one through :class:`~control_plane.adapters.route_store.RouteStore`.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.adapters.aws_errors import translate
from control_plane.model.item import from_item


def scan_routes(client, routes_table: str) -> list[dict]:
    """Every item of ``routes_table``, read strongly consistent, in ``route_id`` order."""
    documents: list[dict] = []
    try:
        paginator = client.get_paginator("scan")
        for page in paginator.paginate(TableName=routes_table, ConsistentRead=True):
            documents.extend(from_item(item) for item in page.get("Items", []))
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, action="scan routes") from exc
    return sorted(documents, key=lambda d: str(d.get("route_id", "")))
