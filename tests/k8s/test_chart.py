"""The Helm chart, rendered by the real Helm SDK: lint, Kubernetes schemas, and real properties."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "faultline"
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
# The range the chart supports (Chart.yaml kubeVersion >= 1.28): oldest and newest checked.
KUBE_VERSIONS = ("1.28.0", "1.34.0")
NAMESPACE = "ml"
CUSTOM_KINDS = {
    *("ServiceMonitor", "PodMonitor", "PrometheusRule", "Rollout", "AnalysisTemplate"),
    *("ServingRuntime", "InferenceService"),
}
pytestmark = pytest.mark.k8s


def values_of(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def render(
    values: dict[str, Any], tests: bool = False, install: bool = True
) -> list[dict[str, Any]]:
    """Rendered objects (NOTES.txt left out; helm test pods only when asked), for an install
    or (install=False) an upgrade."""
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(
            values=values,
            name="faultline",
            namespace=NAMESPACE,
            is_install=install,
            is_upgrade=not install,
        )
    objects = []
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt") or ("/tests/" in path) != tests:
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod metadata, pod spec) of every workload and pod."""
    specs = []
    for o in objects:
        if o["kind"] in ("Deployment", "Rollout"):
            specs.append((o["spec"]["template"]["metadata"], o["spec"]["template"]["spec"]))
        elif o["kind"] == "Pod":
            specs.append((o["metadata"], o["spec"]))
    return specs


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def is_explainer(labels: dict[str, str]) -> bool:
    """Whether pod labels are the explainer's (its own component; never a serving pod)."""
    return labels.get("app.kubernetes.io/component") == "explainer"


@pytest.fixture(scope="module", params=VALUES_FILES, ids=lambda p: p.name)
def rendered(request: pytest.FixtureRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    values = values_of(request.param)
    return values, render(values) + render(values, tests=True)


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("values_file", VALUES_FILES, ids=lambda p: p.name)
def test_lint_strict(values_file: Path, kube: str) -> None:
    result = helm.lint(
        str(CHART), values=values_of(values_file), strict=True, kube_version=f"v{kube}"
    )
    problems = [m for m in result.get("messages", []) if m.get("severity", 0) >= 2]
    assert not result.get("errors") and not problems, (result.get("errors"), problems)


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_builtin_objects_pass_strict_kubernetes_schemas(
    rendered: tuple[dict[str, Any], list[dict[str, Any]]], kube: str
) -> None:
    _, objects = rendered
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, kube, strict=True)


def test_selectors_match_pod_labels(rendered: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    _, objects = rendered
    workloads = by_kind(objects, "Deployment") + by_kind(objects, "Rollout")
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads]
    for w in workloads:
        assert selects(
            w["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"]
        )
        assert "helm.sh/chart" not in w["spec"]["selector"]["matchLabels"]
    # The serving pods (every track) and the explainer's are two groups: no selector of the
    # chart mixes them; a PDB or NetworkPolicy selects every pod of its group.
    groups = [is_explainer(labels) for labels in pod_labels]

    def members(selector: dict[str, str]) -> tuple[bool, list[bool]]:
        """(the one group the selector selects from, whether it selects each of its pods)."""
        [group] = {
            g for g, labels in zip(groups, pod_labels, strict=True) if selects(selector, labels)
        }
        chosen = [
            selects(selector, pod) for g, pod in zip(groups, pod_labels, strict=True) if g == group
        ]
        return group, chosen

    for service in by_kind(objects, "Service"):
        members(service["spec"]["selector"])
    for pdb in by_kind(objects, "PodDisruptionBudget"):  # the serving pods' budget only
        assert members(pdb["spec"]["selector"]["matchLabels"]) == (
            False,
            [True] * groups.count(False),
        )
    for policy in by_kind(objects, "NetworkPolicy"):
        if policy["metadata"]["name"].endswith("-helm-test"):
            continue  # the helm test pod's own policy (tests/k8s/test_workload_safety.py)
        assert all(members(policy["spec"]["podSelector"]["matchLabels"])[1])
    for monitor in by_kind(objects, "ServiceMonitor"):
        services = [
            s
            for s in by_kind(objects, "Service")
            if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert services
        if is_explainer(monitor["spec"]["selector"]["matchLabels"]):
            assert all(is_explainer(s["spec"]["selector"]) for s in services)
            continue
        assert not any(is_explainer(s["spec"]["selector"]) for s in services)
        assert monitor["spec"]["podTargetLabels"] == ["track", "model-bundle"]
        assert all(
            "track" in labels or w["kind"] == "Rollout" or is_explainer(labels)
            for labels, w in zip(pod_labels, workloads, strict=True)
        )


def test_ports_agree(rendered: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    _, objects = rendered
    for _, spec in pod_specs(objects):
        main = [c for c in spec["containers"] if c["name"] == "faultline"]
        for container in main:
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert container["ports"] == [
                {"name": "http", "containerPort": 8000, "protocol": "TCP"},
                {
                    "name": "metrics",
                    "containerPort": int(env["FAULTLINE_METRICS_PORT"]),
                    "protocol": "TCP",
                },
            ]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["port"] == "http"
                assert container[probe]["timeoutSeconds"] >= 1  # never the silent 1 s default
        for container in (c for c in spec["containers"] if c["name"] == "explainer"):
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert container["ports"] == [
                {"name": "http", "containerPort": 8001, "protocol": "TCP"},
                {
                    "name": "metrics",
                    "containerPort": int(env["FAULTLINE_EXPLAINER_METRICS_PORT"]),
                    "protocol": "TCP",
                },
            ]
            assert container["args"][-2:] == ["--port", "8001"]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["port"] == "http"
                assert container[probe]["timeoutSeconds"] >= 1
    for service in by_kind(objects, "Service"):
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http", "metrics"]
    for ingress in by_kind(objects, "Ingress"):  # the ingress never routes /metrics
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["port"] == {"name": "http"}
    for monitor in by_kind(objects, "ServiceMonitor"):
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


def test_grace_period_covers_prestop_and_drain(
    rendered: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    for metadata, spec in pod_specs(objects):
        if metadata["labels"].get("app.kubernetes.io/component") == "helm-test":
            continue
        if is_explainer(metadata["labels"]):  # no drain setting: the preStop sleep must fit
            [container] = spec["containers"]
            assert (
                int(container["lifecycle"]["preStop"]["exec"]["command"][1])
                < spec["terminationGracePeriodSeconds"]
            )
            continue
        container = next(c for c in spec["containers"] if c["name"] == "faultline")
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
        env = {e["name"]: e["value"] for e in container["env"]}
        drain = float(env["FAULTLINE_DRAIN_SECONDS"])
        assert pre_stop + drain < spec["terminationGracePeriodSeconds"]


def test_restricted_pod_security(rendered: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    """The Pod Security Standards 'restricted' profile, checked on every pod spec."""
    _, objects = rendered
    for _, spec in pod_specs(objects):
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
        assert not any("hostPath" in v for v in spec.get("volumes", []))
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert not context.get("capabilities", {}).get("add")
            assert not context.get("privileged")
            assert context["readOnlyRootFilesystem"] is True
            assert container["resources"]["limits"]


def test_optional_features_are_off_by_default() -> None:
    kinds = {o["kind"] for o in render({})}
    assert kinds == {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"}
    [deployment] = by_kind(render({}), "Deployment")
    assert deployment["spec"]["replicas"] == 2


def test_hpa_renders_only_when_enabled_and_then_owns_replicas() -> None:
    values = values_of(CHART / "ci" / "hpa-values.yaml")
    objects = render(values, install=False)
    [hpa] = by_kind(objects, "HorizontalPodAutoscaler")
    [deployment] = by_kind(objects, "Deployment")
    assert "replicas" not in deployment["spec"]  # an upgrade never resets what the HPA chose
    [installed] = by_kind(render(values), "Deployment")  # a new install starts at the floor
    assert installed["spec"]["replicas"] == hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
    assert {m["type"] for m in hpa["spec"]["metrics"]} == {"Resource", "Pods"}
    assert not by_kind(render({}), "HorizontalPodAutoscaler")


def test_canary_tracks_share_the_service() -> None:
    objects = render(values_of(CHART / "ci" / "canary-values.yaml"))
    deployments = {
        d["spec"]["template"]["metadata"]["labels"]["track"]: d
        for d in by_kind(objects, "Deployment")
    }
    assert set(deployments) == {"stable", "canary"}
    assert (
        deployments["canary"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "ghcr.io/faultline-ml/faultline:next"
    )
    [service] = by_kind(objects, "Service")
    assert "track" not in service["spec"]["selector"]
    for deployment in deployments.values():
        assert selects(
            service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]
        )
    stable, canary = (
        deployments[t]["spec"]["selector"]["matchLabels"] for t in ("stable", "canary")
    )
    assert stable != canary


def test_each_track_pins_its_own_bundle() -> None:
    def pins(values: dict[str, Any]) -> dict[str, str | None]:
        found = {}
        for metadata, spec in pod_specs(render(values)):
            env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
            found[metadata["labels"].get("track", "")] = env.get("FAULTLINE_BUNDLE_SHA256")
        return found

    stable, canary = "a" * 64, "b" * 64
    canary_values = values_of(CHART / "ci" / "canary-values.yaml")
    assert pins(canary_values) == {"stable": None, "canary": None}  # unpinned by default
    canary_values["model"] = {"bundleSha256": stable}
    canary_values["canary"]["bundleSha256"] = canary
    assert pins(canary_values) == {"stable": stable, "canary": canary}
    rollout = values_of(CHART / "ci" / "rollout-values.yaml")
    rollout["model"] = {"bundleSha256": stable}
    assert set(pins(rollout).values()) == {stable}


def test_ingress_canary_weight_routes_to_canary_pods_only() -> None:
    objects = render(values_of(CHART / "ci" / "canary-ingress-values.yaml"))
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    assert services["faultline"]["spec"]["selector"]["track"] == "stable"
    assert services["faultline-canary"]["spec"]["selector"]["track"] == "canary"
    canary_ingress = next(
        i for i in by_kind(objects, "Ingress") if i["metadata"]["name"].endswith("-canary")
    )
    annotations = canary_ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "20"


def test_rollout_and_analysis_template_come_from_the_canary_definition() -> None:
    objects = render(values_of(CHART / "ci" / "rollout-values.yaml"))
    assert not by_kind(objects, "Deployment")
    [rollout] = by_kind(objects, "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["canaryMetadata"]["labels"] == {"track": "canary"}
    assert any("analysis" in step for step in canary["steps"])
    [template] = by_kind(objects, "AnalysisTemplate")
    checks = yaml.safe_load((ROOT / "prometheus" / "canary-analysis.yml").read_text())["checks"]
    metrics = {m["name"]: m for m in template["spec"]["metrics"]}
    judging = [c for c in checks if c["kind"] != "traffic"]
    assert list(metrics) == [c["name"] for c in judging]  # traffic guards every judging query
    for check in judging:
        query = metrics[check["name"]]["provider"]["prometheus"]["query"]
        assert 'job="faultline", namespace="ml"' in query or "$SELECTOR" not in check["query"]
        assert "$" not in query.replace("{{args.window}}", "")
        assert metrics[check["name"]]["successCondition"] == f"result[0] {check['condition']}"
    [hpa] = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Rollout"


def test_embedded_rules_and_dashboards_are_identical_to_their_sources() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "helm" / "sync_chart_files.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
    objects = render(values_of(CHART / "ci" / "monitoring-values.yaml"))
    [rule] = by_kind(objects, "PrometheusRule")
    sources = [
        yaml.safe_load(p.read_text()) for p in sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
    ]
    assert rule["spec"]["groups"] == [g for s in sources for g in s["groups"]]
    maps = by_kind(objects, "ConfigMap")
    dashboards = {
        p.name: json.loads(p.read_text()) for p in (ROOT / "grafana" / "dashboards").glob("*.json")
    }
    embedded = {name: json.loads(text) for m in maps for name, text in m["data"].items()}
    assert embedded == dashboards
    assert all(m["metadata"]["labels"]["grafana_dashboard"] == "1" for m in maps)


@pytest.mark.parametrize(
    "bad",
    [
        {"replicaCont": 3},
        {"replicaCount": "three"},
        {"service": {"prot": 80}},
        {"canary": {"trafficSplit": "dns"}},
        {"model": {"bundleSha256": "ABC"}},
        {"explainer": {"enabeld": True}},
        {"explainer": {"enabled": True, "metricsPort": 8001}},
        {"explainer": {"probes": {"startup": {"timeoutSeconds": 0}}}},
    ],
    ids=[
        "misspelled key",
        "wrong type",
        "nested typo",
        "bad enum",
        "bad bundle hash",
        "explainer typo",
        "explainer metrics on its API port",
        "explainer probe timeout below 1 s",
    ],
)
def test_schema_rejects_bad_values(bad: dict[str, Any]) -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(bad)


def test_refuses_a_grace_period_that_cannot_drain() -> None:
    with pytest.raises(helm.HelmError, match="must exceed"):
        render({"lifecycle": {"terminationGracePeriodSeconds": 10}})


def test_refuses_canary_and_rollout_together() -> None:
    with pytest.raises(helm.HelmError, match="alternatives"):
        render({"canary": {"enabled": True}, "rollout": {"enabled": True}})


def test_helm_test_pod_checks_readiness_and_a_prediction() -> None:
    [pod] = by_kind(render({}, tests=True), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert "/readyz" in script and "/v1/predict" in script and "failure_probability" in script


def test_api_keys_come_from_the_secret_only_when_auth_is_on() -> None:
    def env_and_mounts(values: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
        [deployment] = by_kind(render(values), "Deployment")
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        return env, [m["mountPath"] for m in container["volumeMounts"]]

    env, mounts = env_and_mounts({})
    assert "FAULTLINE_API_KEYS_FILE" not in env and "/etc/faultline/auth" not in mounts
    assert env["FAULTLINE_MODEL_DETAILS"] == "false" and env["FAULTLINE_OPENAPI"] == "false"
    values = values_of(CHART / "ci" / "auth-values.yaml")
    env, mounts = env_and_mounts(values)
    assert env["FAULTLINE_API_KEYS_FILE"] == "/etc/faultline/auth/api-keys"
    assert "/etc/faultline/auth" in mounts
    [pod] = by_kind(render(values, tests=True), "Pod")
    script = pod["spec"]["containers"][0]["command"][-1]
    assert 'open("/etc/faultline/auth/api-keys")' in script and "X-API-Key" in script
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "faultline-api-keys"
    assert pod["spec"]["securityContext"]["fsGroup"] == 10001


def test_kserve_mode_hands_the_workload_to_kserve() -> None:
    objects = render(values_of(CHART / "ci" / "kserve-values.yaml"))
    kinds = {o["kind"] for o in objects}
    assert {"ServingRuntime", "InferenceService", "PodMonitor"} <= kinds
    assert not kinds & {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    [runtime] = by_kind(objects, "ServingRuntime")
    [service] = by_kind(objects, "InferenceService")
    [container] = runtime["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    # KServe routes v2 requests for the InferenceService's name to port 8080 of this container
    assert env["FAULTLINE_MODEL_NAME"] == service["metadata"]["name"]
    assert env["FAULTLINE_MODEL_DIR"] == "/mnt/models"
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert "--port" in container["args"] and "8080" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2" and runtime["spec"]["protocolVersions"] == ["v2"]
    assert model["modelFormat"]["name"] == runtime["spec"]["supportedModelFormats"][0]["name"]


def test_kserve_mode_refuses_the_charts_own_rollouts_and_needs_a_storage_uri() -> None:
    with pytest.raises(helm.HelmError, match=r"kserve\.enabled"):
        render({"kserve": {"enabled": True}, "rollout": {"enabled": True}})
    with pytest.raises(helm.HelmError, match="storageUri"):
        render({"kserve": {"enabled": True, "inferenceService": {"enabled": True}}})


EXPLAINER_VALUES = CHART / "ci" / "explainer-values.yaml"


def _env(container: dict[str, Any]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _explainer_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["metadata"]["name"] == "faultline-explainer"]


def test_explainer_is_off_by_default() -> None:
    objects = render({}) + render({}, tests=True)
    assert not _explainer_objects(objects)
    for metadata, spec in pod_specs(objects):
        assert not is_explainer(metadata["labels"])
        for container in spec["containers"]:
            assert "FAULTLINE_EXPLAINER_URL" not in _env(container)


def test_explainer_renders_and_the_service_finds_it() -> None:
    objects = render(values_of(EXPLAINER_VALUES))
    mine = {o["kind"]: o for o in _explainer_objects(objects)}
    assert set(mine) == {"Deployment", "Service", "ServiceMonitor", "NetworkPolicy"}
    deployment, service = mine["Deployment"], mine["Service"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/faultline-ml/faultline-explainer:0.1.0"
    assert container["args"][:3] == ["python3", "-m", "explainer"]
    assert container["args"][container["args"].index("--model-dir") + 1] == "/models"
    # the URL the service's pods get names the explainer Service's API port, which reaches the
    # explainer container's API port (and the Service selects the explainer pods)
    [serving] = by_kind(objects, "Deployment")[:1]
    assert serving["metadata"]["name"] == "faultline"
    url = _env(serving["spec"]["template"]["spec"]["containers"][0])["FAULTLINE_EXPLAINER_URL"]
    [http] = [p for p in service["spec"]["ports"] if p["name"] == "http"]
    assert url == f"http://{service['metadata']['name']}:{http['port']}"
    [api] = [p for p in container["ports"] if p["name"] == http["targetPort"]]
    assert api["containerPort"] == 8001
    assert selects(
        service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]
    )
    # the service's own Service, PDB and ServiceMonitor never pick up the explainer
    [main_service] = [
        s for s in by_kind(objects, "Service") if s["metadata"]["name"] == "faultline"
    ]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert not selects(main_service["spec"]["selector"], labels)
    monitors = {m["metadata"]["name"]: m for m in by_kind(objects, "ServiceMonitor")}
    assert not selects(
        monitors["faultline"]["spec"]["selector"]["matchLabels"], service["metadata"]["labels"]
    )
    assert selects(
        monitors["faultline-explainer"]["spec"]["selector"]["matchLabels"],
        service["metadata"]["labels"],
    )
    assert monitors["faultline-explainer"]["spec"]["endpoints"][0]["port"] == "metrics"


@pytest.mark.parametrize(
    ("extra", "kinds"),
    [
        ({"canary": {"enabled": True, "image": {"tag": "next"}}}, ["Deployment", "Deployment"]),
        ({"rollout": {"enabled": True}}, ["Rollout"]),
    ],
    ids=["canary", "rollout"],
)
def test_every_serving_track_gets_the_explainer_url(
    extra: dict[str, Any], kinds: list[str]
) -> None:
    objects = render({**values_of(EXPLAINER_VALUES), **extra})
    serving = [
        o
        for o in objects
        if o["kind"] in ("Deployment", "Rollout") and o["metadata"]["name"] != "faultline-explainer"
    ]
    assert [o["kind"] for o in serving] == kinds
    for workload in serving:
        container = workload["spec"]["template"]["spec"]["containers"][0]
        assert _env(container)["FAULTLINE_EXPLAINER_URL"] == "http://faultline-explainer:8001"


def test_explainer_image_follows_the_service_tag_but_never_its_digest() -> None:
    def image(values: dict[str, Any]) -> str:
        [deployment] = [o for o in _explainer_objects(render(values)) if o["kind"] == "Deployment"]
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    on: dict[str, Any] = {"explainer": {"enabled": True}}
    repository = "ghcr.io/faultline-ml/faultline-explainer"
    assert image({**on, "image": {"tag": "abc"}}) == f"{repository}:abc"
    assert image({**on, "image": {"digest": "sha256:" + "a" * 64}}) == f"{repository}:0.1.0"
    own = {"enabled": True, "image": {"digest": "sha256:" + "b" * 64}}
    assert image({"explainer": own, "image": {"tag": "abc"}}) == f"{repository}@sha256:{'b' * 64}"


@pytest.mark.parametrize("source", ["bundle-volume-values.yaml", "bundle-init-values.yaml"])
def test_explainer_reads_the_same_bundle_as_the_service(source: str) -> None:
    values = {**values_of(CHART / "ci" / source), "explainer": {"enabled": True}}
    specs = {is_explainer(m["labels"]): s for m, s in pod_specs(render(values))}
    service, explainer = specs[False], specs[True]
    bundle = [v for v in service["volumes"] if v["name"] == "bundle"]
    assert bundle and [v for v in explainer["volumes"] if v["name"] == "bundle"] == bundle
    assert explainer.get("initContainers") == service.get("initContainers")
    [mount] = [m for m in explainer["containers"][0]["volumeMounts"] if m["name"] == "bundle"]
    assert mount == {"name": "bundle", "mountPath": "/models", "readOnly": True}


def test_refuses_the_explainer_with_kserve() -> None:
    values = {**values_of(CHART / "ci" / "kserve-values.yaml"), "explainer": {"enabled": True}}
    with pytest.raises(helm.HelmError, match=r"explainer\.enabled"):
        render(values)
