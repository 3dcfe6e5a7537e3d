"""`/api/policies[/vhost[/name]]`: policies listed, set and cleared, as RabbitMQ's management API does."""

from __future__ import annotations

import html
from typing import Any

from .. import core
from ..core.policies import Policy, PolicyError, parse_policy
from .api import CREATED, NO_CONTENT, HTTPError, Request, Response, Routes, bad_request, not_found, vhost, vhosts

routes = Routes()


def applied_json(policy: Policy | None) -> dict[str, Any]:
    """A queue's `policy` and `effective_policy_definition`, as RabbitMQ shows them."""
    if policy is None:
        return {"policy": None, "effective_policy_definition": {}}
    return {"policy": policy.name, "effective_policy_definition": policy.definition}


def _listed(policies: list[Policy]) -> list[dict[str, Any]]:
    # RabbitMQ lists policies by priority, lowest first.
    return [policy.as_json() for policy in sorted(policies, key=lambda policy: (policy.priority, policy.vhost, policy.name))]


@routes.get("/api/policies")
def list_all(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return _listed([policy for found in vhosts(request, broker) for policy in found.policies])


@routes.get("/api/policies/{vhost}")
def list_vhost(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return _listed(list(vhost(request, broker).policies))


@routes.get("/api/policies/{vhost}/{name}")
def get(request: Request, broker: core.Broker) -> dict[str, Any]:
    policy = vhost(request, broker).policies.get(request.params["name"])
    if policy is None:
        raise not_found()
    return policy.as_json()


def _check_policymaker(request: Request) -> None:
    # Any management user may read policies; changing them takes the policymaker tag, and RabbitMQ
    # words its refusal as for an object, not as for a route.
    if not {"policymaker", "administrator"}.intersection(request.user.tags):
        raise HTTPError(401, "not_authorised", "User not authorised to access object")


@routes.put("/api/policies/{vhost}/{name}")
def put(request: Request, broker: core.Broker) -> Response:
    _check_policymaker(request)
    name, vhost_name = request.params["name"], request.params["vhost"]
    if vhost_name not in broker.vhosts:
        raise HTTPError(404, "not_found", "vhost_not_found")
    try:
        policy = parse_policy(vhost_name, name, request.json())
    except PolicyError as error:
        # RabbitMQ's reasons quote Erlang terms such as <<"x">>, which it escapes as HTML.
        raise bad_request(html.escape(error.reason, quote=False)) from None
    existed = broker.vhosts[vhost_name].policies.get(name) is not None
    broker.set_policy(policy)
    return NO_CONTENT if existed else CREATED


@routes.delete("/api/policies/{vhost}/{name}")
def delete(request: Request, broker: core.Broker) -> Response:
    _check_policymaker(request)
    if not broker.clear_policy(vhost(request, broker).name, request.params["name"]):
        raise not_found()
    return NO_CONTENT
