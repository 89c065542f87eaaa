"""Defects a real cluster found, each as a class check on every values file:
helper pods under workload selectors, NetworkPolicies that cut off helm test or Prometheus,
a disruption budget that lets a drain empty the service, a canary that runs the stable image,
and tracks scraped as different Prometheus jobs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.k8s import netpol
from tests.k8s.test_chart import (
    CHART,
    NAMESPACE,
    VALUES_FILES,
    by_kind,
    helm,
    is_explainer,
    render,
    values_of,
)

pytestmark = pytest.mark.k8s
KIND_VALUES = CHART.parents[1] / "k8s" / "kind" / "faultline-values.yaml"
ALL_VALUES = [*VALUES_FILES, KIND_VALUES]


@pytest.fixture(scope="module", params=ALL_VALUES, ids=lambda p: p.name)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    values = values_of(request.param)
    return render(values) + render(values, tests=True)


def _workload_pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pod templates of the Deployments and Rollouts (metadata + spec)."""
    return [o["spec"]["template"] for o in objects if o["kind"] in ("Deployment", "Rollout")]


def _helper_pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hook pods (helm test) and any other pod that is not part of the workload."""
    return [o for o in objects if o["kind"] in ("Pod", "Job")]


def _workload_selectors(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every label selector that means 'the serving pods'."""
    found: list[tuple[str, dict[str, Any]]] = []
    for o in objects:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "Service":
            found.append((name, {"matchLabels": o["spec"]["selector"]}))
        elif o["kind"] == "PodDisruptionBudget":
            found.append((name, o["spec"]["selector"]))
        elif o["kind"] == "NetworkPolicy" and not name.endswith("-helm-test"):
            found.append((name, o["spec"]["podSelector"]))
        elif o["kind"] in ("Deployment", "Rollout"):
            found.append((name, o["spec"]["selector"]))
            for constraint in o["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
                found.append((f"{name} topology spread", constraint["labelSelector"]))
    return found


def test_no_helper_pod_is_selected_as_a_serving_pod(objects: list[dict[str, Any]]) -> None:
    helpers = _helper_pods(objects)
    assert helpers, "every values set renders the helm test pod"
    for pod in helpers:
        labels = pod["metadata"]["labels"]
        for name, selector in _workload_selectors(objects):
            assert not netpol.matches(selector, labels), f"{name} selects {pod['metadata']['name']}"


def test_every_workload_selector_selects_the_serving_pods(objects: list[dict[str, Any]]) -> None:
    pods = _workload_pods(objects)
    for name, selector in _workload_selectors(objects):
        assert any(netpol.matches(selector, p["metadata"]["labels"]) for p in pods), name


def _pod(template: dict[str, Any], namespace: str = NAMESPACE) -> netpol.Pod:
    ports = {
        p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"]
    }
    return netpol.Pod(namespace, template["metadata"]["labels"], ports)


def _serving_pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in _workload_pods(objects) if not is_explainer(t["metadata"]["labels"])]


PROMETHEUS = netpol.Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
INGRESS = netpol.Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
STRANGER = netpol.Pod("other", {"app": "curl"})
NEIGHBOUR = netpol.Pod(NAMESPACE, {"app": "curl"})  # another app in the release's namespace
DNS = netpol.Pod("kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})


def test_network_paths_that_must_work_and_must_not(objects: list[dict[str, Any]]) -> None:
    """helm test reaches the API; Prometheus reaches /metrics; the ingress reaches the API but
    never /metrics; other namespaces reach nothing (when the NetworkPolicy is on)."""
    policies_on = bool(by_kind(objects, "NetworkPolicy"))
    [test_pod] = (o for o in objects if o["kind"] == "Pod")
    tester = netpol.Pod(NAMESPACE, test_pod["metadata"]["labels"])
    prometheus, ingress, stranger, dns = PROMETHEUS, INGRESS, STRANGER, DNS
    for template in _serving_pods(objects):
        pod = _pod(template)
        http, metrics = pod.ports["http"], pod.ports["metrics"]
        assert netpol.allowed(objects, tester, pod, http), "helm test cannot reach the API"
        assert netpol.allowed(objects, prometheus, pod, metrics), "Prometheus cannot scrape"
        assert netpol.allowed(objects, ingress, pod, http), "the ingress cannot reach the API"
        assert netpol.allowed(objects, pod, dns, 53)
        assert netpol.allowed(objects, tester, dns, 53)
        if policies_on:
            assert not netpol.allowed(objects, ingress, pod, metrics)
            assert not netpol.allowed(objects, stranger, pod, http)
            assert not netpol.allowed(objects, tester, pod, metrics)
            assert not netpol.allowed(objects, pod, stranger, 443)  # no egress but DNS


def test_the_reachability_check_sees_what_kind_enforced() -> None:
    """The defect found on kind: a test pod under the service's policy gets DNS egress only."""
    values = values_of(CHART / "ci" / "networkpolicy-values.yaml")
    objects = render(values) + render(values, tests=True)
    [test_pod] = (o for o in objects if o["kind"] == "Pod")
    [template] = _workload_pods(objects)
    pod = _pod(template)
    # the chart as it was: the test pod carried the workload's selector labels, no own policy
    broken = [o for o in copy.deepcopy(objects) if not o["metadata"]["name"].endswith("-helm-test")]
    for o in broken:
        if o["kind"] == "Pod":
            o["metadata"]["labels"].update(template["metadata"]["labels"])
    labels = next(o for o in broken if o["kind"] == "Pod")["metadata"]["labels"]
    tester = netpol.Pod(NAMESPACE, labels)
    assert not netpol.allowed(broken, tester, pod, pod.ports["http"])
    assert netpol.allowed(objects, netpol.Pod(NAMESPACE, test_pod["metadata"]["labels"]), pod, 8000)


def _explainer_paths(objects: list[dict[str, Any]]) -> dict[str, bool]:
    """Every path to and from the explainer's pods that must work or must not, and whether it
    does under these objects' NetworkPolicies ({} without an explainer)."""
    [test_pod] = (o for o in objects if o["kind"] == "Pod")
    tester = netpol.Pod(NAMESPACE, test_pod["metadata"]["labels"])
    paths: dict[str, bool] = {}
    explainers = [t for t in _workload_pods(objects) if is_explainer(t["metadata"]["labels"])]
    for explainer in map(_pod, explainers):
        api, metrics = explainer.ports["http"], explainer.ports["metrics"]
        for n, service in enumerate(map(_pod, _serving_pods(objects))):
            paths[f"service pod {n} -> explainer API"] = netpol.allowed(
                objects, service, explainer, api
            )
            paths[f"explainer -> service pod {n} API"] = netpol.allowed(
                objects, explainer, service, service.ports["http"]
            )
        paths["Prometheus -> explainer metrics"] = netpol.allowed(
            objects, PROMETHEUS, explainer, metrics
        )
        paths["explainer -> DNS"] = netpol.allowed(objects, explainer, DNS, 53)
        for name, peer in (
            ("ingress", INGRESS),
            ("stranger", STRANGER),
            ("neighbour", NEIGHBOUR),
            ("helm test", tester),
        ):
            paths[f"{name} -> explainer API"] = netpol.allowed(objects, peer, explainer, api)
        paths["ingress -> explainer metrics"] = netpol.allowed(objects, INGRESS, explainer, metrics)
        paths["explainer -> stranger"] = netpol.allowed(objects, explainer, STRANGER, 443)
    return paths


def _must_work(path: str) -> bool:
    return path.startswith("service pod") or path in (
        "Prometheus -> explainer metrics",
        "explainer -> DNS",
    )


def test_only_the_service_reaches_the_explainer(objects: list[dict[str, Any]]) -> None:
    """The service's pods (every track) reach the explainer's API and Prometheus its metrics;
    with the NetworkPolicy on, nothing else reaches it and it reaches nothing but DNS."""
    paths = _explainer_paths(objects)
    policies_on = bool(by_kind(objects, "NetworkPolicy"))
    for path, open_ in paths.items():
        if _must_work(path):
            assert open_, path
        elif policies_on:
            assert not open_, path


def test_the_explainer_paths_need_both_policies() -> None:
    """The check sees a closed path and an open one: without the service's egress rule the
    explainer is unreachable; without the explainer's own policy anyone reaches it."""
    objects = render(values_of(CHART / "ci" / "explainer-values.yaml"))
    objects += render(values_of(CHART / "ci" / "explainer-values.yaml"), tests=True)
    assert all(_must_work(p) == open_ for p, open_ in _explainer_paths(objects).items())
    no_egress = copy.deepcopy(objects)
    [policy] = [
        o
        for o in no_egress
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "faultline"
    ]
    policy["spec"]["egress"] = policy["spec"]["egress"][:1]  # DNS only, as before the explainer
    assert not _explainer_paths(no_egress)["service pod 0 -> explainer API"]
    unguarded = [
        o
        for o in objects
        if o["metadata"]["name"] != "faultline-explainer" or o["kind"] != "NetworkPolicy"
    ]
    assert _explainer_paths(unguarded)["stranger -> explainer API"]


def _floor(objects: list[dict[str, Any]]) -> int:
    [hpa] = by_kind(objects, "HorizontalPodAutoscaler") or [None]
    if hpa is not None:
        return int(hpa["spec"]["minReplicas"])
    [workload] = [
        o
        for o in objects
        if o["kind"] in ("Deployment", "Rollout")
        and not is_explainer(o["spec"]["template"]["metadata"]["labels"])
    ][:1]
    return int(workload["spec"]["replicas"])


def test_a_drain_never_takes_every_pod(objects: list[dict[str, Any]]) -> None:
    for pdb in by_kind(objects, "PodDisruptionBudget"):
        assert "minAvailable" not in pdb["spec"] or "maxUnavailable" not in pdb["spec"]
        assert int(pdb["spec"]["maxUnavailable"]) < _floor(objects)


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": 1},
        {"autoscaling": {"enabled": True, "minReplicas": 1}},
        {"podDisruptionBudget": {"maxUnavailable": 2}},
    ],
    ids=["one replica", "HPA floor of one", "budget as large as the floor"],
)
def test_refuses_a_budget_that_lets_a_drain_empty_the_service(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError, match="drain can take every pod"):
        render(values)
    render({**values, "podDisruptionBudget": {"enabled": False}})  # the explicit way out


def test_refuses_an_hpa_whose_ceiling_is_below_its_floor() -> None:
    with pytest.raises(helm.HelmError, match="maxReplicas"):
        render({"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 2}})


def test_cross_field_rules_the_api_server_enforces(objects: list[dict[str, Any]]) -> None:
    """Requests within limits; HPA ceiling >= floor (the API server refused both)."""
    units = {"m": 1e-3, "Mi": 2**20, "Gi": 2**30, "Ki": 2**10, "": 1}

    def quantity(text: str | int) -> float:
        text = str(text)
        suffix = next((s for s in ("Mi", "Gi", "Ki", "m") if text.endswith(s)), "")
        return float(text[: len(text) - len(suffix)] if suffix else text) * units[suffix]

    for o in objects:
        if o["kind"] not in ("Deployment", "Rollout", "Pod"):
            continue
        spec = o["spec"]["template"]["spec"] if o["kind"] != "Pod" else o["spec"]
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            resources = container.get("resources", {})
            for name, request in resources.get("requests", {}).items():
                limit = resources.get("limits", {}).get(name)
                assert limit is None or quantity(request) <= quantity(limit), container["name"]
    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"] >= 1


def _images(values: dict[str, Any]) -> dict[str, str]:
    return {
        d["spec"]["template"]["metadata"]["labels"]["track"]: d["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
        for d in by_kind(render(values), "Deployment")
    }


def test_the_canary_runs_the_image_it_names() -> None:
    digest = "sha256:" + "a" * 64
    values = {"image": {"digest": digest}, "canary": {"enabled": True, "image": {"tag": "next"}}}
    images = _images(values)
    assert images["stable"] == f"ghcr.io/faultline-ml/faultline@{digest}"
    assert images["canary"] == "ghcr.io/faultline-ml/faultline:next"
    other = "sha256:" + "b" * 64
    values["canary"]["image"] = {"digest": other}
    assert _images(values)["canary"] == f"ghcr.io/faultline-ml/faultline@{other}"
    values["canary"]["image"] = {}  # names nothing: the stable image, on purpose
    assert _images(values)["canary"] == images["stable"]


def test_both_tracks_are_one_prometheus_job() -> None:
    """The canary Service would be its own job (its name) without jobLabel; the analysis and
    the canary alert select one job and tell the tracks apart by `track`."""
    objects = render(values_of(CHART / "ci" / "canary-ingress-values.yaml")) + render(
        {
            **values_of(CHART / "ci" / "canary-ingress-values.yaml"),
            "monitoring": {"serviceMonitor": {"enabled": True}},
        }
    )
    [monitor] = by_kind(objects, "ServiceMonitor")
    services = [
        s
        for s in by_kind(objects, "Service")
        if netpol.matches(monitor["spec"]["selector"], s["metadata"]["labels"])
    ]
    assert len({s["metadata"]["name"] for s in services}) == 2
    jobs = {s["metadata"]["labels"][monitor["spec"]["jobLabel"]] for s in services}
    assert jobs == {"faultline"}
    rollout = render(values_of(CHART / "ci" / "rollout-values.yaml"))
    [template] = by_kind(rollout, "AnalysisTemplate")
    for metric in template["spec"]["metrics"]:
        assert 'job="faultline"' in metric["provider"]["prometheus"]["query"]


def test_the_adapter_rate_keeps_every_filter_of_its_series() -> None:
    """prometheus-adapter fills <<.LabelMatchers>> with namespace/pod only: a filter of the
    seriesQuery missing from the metricsQuery silently counts every handler (probes included)."""
    import re

    import yaml

    adapter = yaml.safe_load((CHART / "files" / "prometheus-adapter-values.yaml").read_text())
    for rule in adapter["rules"]["custom"]:
        filters = re.findall(r'(\w+)(=~?|!=)"([^"]*)"', rule["seriesQuery"])
        kept = [f for f in filters if f[0] not in rule["resources"]["overrides"] and f[2]]
        assert kept, rule["seriesQuery"]
        for name, op, value in kept:
            assert f'{name}{op}"{value}"' in rule["metricsQuery"], (name, rule["metricsQuery"])
        assert (
            rule["name"]["as"]
            == values_of(CHART / "values.yaml")["autoscaling"]["requestsPerSecond"]["metricName"]
        )
