"""`/api/policies[/vhost[/name]]` and `/api/operator-policies[/vhost[/name]]`: policies and operator
policies listed, set and cleared, as RabbitMQ's management API does."""

from __future__ import annotations

import html
from typing import Any, Callable

from .. import core
from ..core.arguments import QueueSettings
from ..core.policies import Policies, Policy, PolicyError, effective_definition, parse_policy
from .api import (
    ADMINISTRATOR,
    CREATED,
    MANAGEMENT,
    NO_CONTENT,
    POLICYMAKER,
    HTTPError,
    Request,
    Response,
    Routes,
    bad_request,
    check_object_access,
    not_found,
    vhost,
    vhosts,
)

routes = Routes()


def applied_json(settings: QueueSettings) -> dict[str, Any]:
    """A queue's `policy`, `operator_policy` and `effective_policy_definition`, as RabbitMQ shows them."""
    policy, operator_policy = settings.policy, settings.operator_policy
    return {
        "policy": None if policy is None else policy.name,
        "operator_policy": None if operator_policy is None else operator_policy.name,
        "effective_policy_definition": effective_definition(policy, operator_policy),
    }


def _listed(policies: list[Policy]) -> list[dict[str, Any]]:
    # RabbitMQ lists policies by priority, lowest first.
    return [policy.as_json() for policy in sorted(policies, key=lambda policy: (policy.priority, policy.vhost, policy.name))]


def _add(path: str, operator: bool) -> None:
    """The routes of policies (`operator`: of operator policies) under `path`. Anyone sees those of
    the vhosts they see in a listing; only administrators see or change an operator policy by name
    here (a policymaker may through `/api/parameters/operator_policy`, as in RabbitMQ), and only
    policymakers change a policy."""
    single = ADMINISTRATOR if operator else MANAGEMENT
    check: Callable[[Request], None] = (
        (lambda request: None) if operator else (lambda request: check_object_access(request, POLICYMAKER))
    )

    def of(found: core.VHost) -> Policies:
        return found.operator_policies if operator else found.policies

    def list_all(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
        return _listed([policy for found in vhosts(request, broker) for policy in of(found)])

    def list_vhost(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
        return _listed(list(of(vhost(request, broker))))

    def get(request: Request, broker: core.Broker) -> dict[str, Any]:
        policy = of(vhost(request, broker)).get(request.params["name"])
        if policy is None:
            raise not_found()
        return policy.as_json()

    def put(request: Request, broker: core.Broker) -> Response:
        check(request)
        name, vhost_name = request.params["name"], request.params["vhost"]
        if vhost_name not in broker.vhosts:
            raise HTTPError(404, "not_found", "vhost_not_found")
        try:
            policy = parse_policy(vhost_name, name, request.json(), operator=operator)
        except PolicyError as error:
            # RabbitMQ's reasons quote Erlang terms such as <<"x">>, which it escapes as HTML for a
            # policy and not for an operator policy.
            raise bad_request(error.reason if operator else html.escape(error.reason, quote=False)) from None
        existed = of(broker.vhosts[vhost_name]).get(name) is not None
        broker.set_policy(policy, operator=operator)
        return NO_CONTENT if existed else CREATED

    def delete(request: Request, broker: core.Broker) -> Response:
        check(request)
        if not broker.clear_policy(vhost(request, broker).name, request.params["name"], operator=operator):
            raise not_found()
        return NO_CONTENT

    routes.add("GET", path, list_all)
    routes.add("GET", path + "/{vhost}", list_vhost)
    routes.add("GET", path + "/{vhost}/{name}", get, single)
    routes.add("PUT", path + "/{vhost}/{name}", put, single)
    routes.add("DELETE", path + "/{vhost}/{name}", delete, single)


_add("/api/policies", operator=False)
_add("/api/operator-policies", operator=True)
