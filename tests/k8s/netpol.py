"""NetworkPolicy semantics (networking.k8s.io/v1), evaluated on rendered objects.

A connection from pod A to port P of pod B is allowed when both sides allow it: B's namespace
policies that select B with policyType Ingress (none: open) must have a rule whose peers match A
and whose ports match P; likewise A's Egress policies for B. Peers: a podSelector alone means
the policy's own namespace, a namespaceSelector alone every pod of the matching namespaces, both
in one peer means both must match. Named ports resolve against the destination's container ports.
This is what kindnet, Calico and Cilium enforce; `helm test` reachability and Prometheus' scrape
path are checked with it before any cluster sees the chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicies see it."""

    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)  # named container ports

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); an empty selector matches all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _peer_matches(peer: dict[str, Any], policy_namespace: str, pod: Pod) -> bool:
    if "ipBlock" in peer:
        return False  # pod-to-pod traffic in these checks never comes from an ipBlock
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], pod.namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or matches(peer["podSelector"], pod.labels)


def _port_matches(rule_ports: list[dict[str, Any]] | None, port: int, target: Pod) -> bool:
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != "TCP":
            continue
        wanted = rule_port.get("port")
        if wanted is None or wanted == port or target.ports.get(str(wanted)) == port:
            return True
    return False


def _allowed_by(
    policies: list[dict[str, Any]], subject: Pod, other: Pod, port: int, direction: str
) -> bool:
    """Whether `subject`'s policies of this direction let traffic to/from `other` through."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"].get("namespace", subject.namespace) == subject.namespace
        and matches(p["spec"].get("podSelector"), subject.labels)
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    target = subject if direction == "Ingress" else other
    for policy in selecting:
        namespace = policy["metadata"].get("namespace", subject.namespace)
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, namespace, other) for p in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, target):
                return True
    return False


def allowed(objects: list[dict[str, Any]], source: Pod, target: Pod, port: int) -> bool:
    """Whether `source` can open a TCP connection to `port` of `target`."""
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    return _allowed_by(policies, target, source, port, "Ingress") and _allowed_by(
        policies, source, target, port, "Egress"
    )
