"""Microsoft.Insights activity log over HTTP: ``GET /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/
management/values`` (api-version 2015-04-01), what ``az monitor activity-log list`` calls. Rules: models.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...wire import Request, Response, Router, ok

if TYPE_CHECKING:
    from ...world import World

VALUES = "/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values"
READ = "Microsoft.Insights/eventtypes/values/read"


def register(router: Router) -> None:
    router.add("GET", VALUES, list_events, mutating=False)


def list_events(world: World, request: Request) -> Response:
    world.subscription(request.params["sub"])  # 404 SubscriptionNotFound for an unknown one
    scope = f"/subscriptions/{request.params['sub']}"
    world.authorization.demand(request.principal, READ, scope)  # subscription scope (pessimistic: docs/twin.md)
    events = world.activity.query(request.params["sub"], request.query.get("$filter", ""), request.query.get("$select", ""))
    return ok({"value": events, "nextLink": None})
