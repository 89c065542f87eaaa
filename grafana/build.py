"""Generate the Grafana dashboards (grafana/dashboards/*.json) from code.

One function per panel; every panel has a unit and a description; every dashboard has a stable
uid, a datasource variable and namespace / model version / track variables. Selectors, SLO
numbers and thresholds come from prometheus/observability.yml (the one observability config).
Run `python grafana/build.py` (or `make generate`) after a change; `make test` regenerates and
fails on a diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1] / "prometheus"))
from observability import load, number, percent

OUT = Path(__file__).resolve().parent / "dashboards"
CONFIG = load()
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'namespace=~"$namespace", model_version=~"$model_version", track=~"$track"'
APP = f'{CONFIG.job}, namespace=~"$namespace", track=~"$track"'
PREDICT = CONFIG.predict
INFO = CONFIG.model_info_metric
CANARY = CONFIG.canary
PSI = (CONFIG.alerts["psi_moderate"], CONFIG.alerts["psi_significant"])
# The explainer's series carry no track (one explainer per release, on the stable bundle).
EXPLAINED = 'namespace=~"$namespace", model_version=~"$model_version"'
Panel = dict[str, Any]


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {
        "datasource": DS,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": ref,
        **extra,
    }


def panel(
    title: str,
    description: str,
    unit: str,
    targets: list[dict[str, Any]],
    kind: str = "timeseries",
    thresholds: list[tuple[float, str]] | None = None,
    **options: Any,
) -> Panel:
    steps = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in thresholds or []]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": options
        or {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def variables(track_default: str = "All") -> list[dict[str, Any]]:
    def query(name: str, label: str, expr: str) -> dict[str, Any]:
        return {
            "name": name,
            "label": label,
            "type": "query",
            "datasource": DS,
            "query": {"query": expr, "refId": name},
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "refresh": 2,
            "sort": 1,
            "current": {"text": track_default if name == "track" else "All", "value": "$__all"},
        }

    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": "default", "value": "default"},
            "refresh": 1,
        },
        query("namespace", "Namespace", f"label_values({INFO}, namespace)"),
        query(
            "model_version",
            "Model version",
            f'label_values({INFO}{{namespace=~"$namespace"}}, model_version)',
        ),
        query("track", "Track", f'label_values({INFO}{{namespace=~"$namespace"}}, track)'),
    ]


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> dict[str, Any]:
    laid_out, x, y = [], 0, 0
    for panel_id, item in enumerate(panels, start=1):
        width = item.pop("width", 12)
        height = item.pop("height", 8)
        if x + width > 24:
            x, y = 0, y + height
        laid_out.append(
            {**item, "id": panel_id, "gridPos": {"h": height, "w": width, "x": x, "y": y}}
        )
        x += width
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["faultline"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "templating": {"list": variables()},
        "annotations": {"list": []},
        "links": [],
        "panels": laid_out,
    }


# --- Service -------------------------------------------------------------------------------


def request_rate() -> Panel:
    return panel(
        "Request rate",
        "Prediction requests per second, by model version and track.",
        "reqps",
        [
            target(
                f"sum by (model_version, track) (faultline:http_requests:rate5m{{{SEL}}})",
                "{{model_version}} {{track}}",
            )
        ],
    )


def error_ratio() -> Panel:
    return panel(
        "5xx error ratio",
        f"Share of {CONFIG.handler} requests answered with 5xx "
        f"(SLO: under {percent(CONFIG.availability_budget)} %).",
        "percentunit",
        [
            target(
                f"max by (model_version, track) (faultline:http_error_ratio:rate5m{{{SEL}}})",
                "{{model_version}} {{track}}",
            )
        ],
        thresholds=[(CONFIG.availability_budget, "red")],
    )


def latency() -> Panel:
    return panel(
        "Latency p50 / p95 / p99",
        f"Server-side {CONFIG.handler} latency from the request histogram (SLO: "
        f"{percent(CONFIG.latency_objective)} % under {number(CONFIG.latency_ms)} ms).",
        "s",
        [
            target(
                f"max by (model_version, track) (faultline:http_request_duration_seconds:p50_5m{{{SEL}}})",
                "p50 {{model_version}} {{track}}",
                "A",
            ),
            target(
                f"max by (model_version, track) (faultline:http_request_duration_seconds:p95_5m{{{SEL}}})",
                "p95 {{model_version}} {{track}}",
                "B",
            ),
            target(
                f"max by (model_version, track) (faultline:http_request_duration_seconds:p99_5m{{{SEL}}})",
                "p99 {{model_version}} {{track}}",
                "C",
            ),
        ],
        thresholds=[(CONFIG.latency_seconds, "red")],
    )


def in_flight() -> Panel:
    return panel(
        "In-flight requests",
        "HTTP requests being served right now, per track.",
        "short",
        [target(f"sum by (track) (faultline_http_requests_in_flight{{{APP}}})", "{{track}}")],
    )


def slo_burn() -> Panel:
    fast, slow = CONFIG.burn_windows[0], CONFIG.burn_windows[-1]
    days = CONFIG.period.removesuffix("d")
    return panel(
        f"SLO burn rate ({fast.long})",
        f"Error-budget burn rate over the last {fast.long}: 1 spends the {days}-day budget in "
        f"{days} days; {number(fast.factor)} pages.",
        "short",
        [
            target(
                f"max by (track) (faultline:http_error_ratio:rate{fast.long}{{{SEL}}})"
                f" / {number(CONFIG.availability_budget)}",
                "availability {{track}}",
                "A",
            ),
            target(
                f"max by (track) (faultline:http_slow_ratio:rate{fast.long}{{{SEL}}})"
                f" / {number(CONFIG.latency_budget)}",
                "latency {{track}}",
                "B",
            ),
        ],
        thresholds=[(slow.factor, "orange"), (fast.factor, "red")],
    )


def status_codes() -> Panel:
    return panel(
        "Responses by status",
        "Answers of /v1/predict per second, by HTTP status.",
        "reqps",
        [
            target(
                f"sum by (status) (rate(http_requests_total{{{APP}, {PREDICT}}}[$__rate_interval]))",
                "{{status}}",
            )
        ],
    )


# --- Model ---------------------------------------------------------------------------------


def failure_share() -> Panel:
    return panel(
        "Predicted failure share",
        "Share of readings the model flags as failures "
        "(probability at or above the bundle's threshold).",
        "percentunit",
        [
            target(
                f"max by (model_version, track) (faultline:predicted_failure_ratio:rate5m{{{SEL}}})",
                "{{model_version}} {{track}}",
            )
        ],
    )


def outcomes() -> Panel:
    return panel(
        "Predictions by outcome",
        "Readings scored per second, by outcome.",
        "short",
        [
            target(
                f"sum by (outcome) (rate(faultline_predictions_total{{{SEL}}}[$__rate_interval]))",
                "{{outcome}}",
            )
        ],
    )


def probability_heatmap() -> Panel:
    item = panel(
        "Predicted probability (heatmap)",
        "Distribution of predicted failure "
        "probabilities over time (buckets shared with the bundle's reference).",
        "short",
        [
            target(
                f"sum by (le) (rate(faultline_predicted_probability_bucket{{{SEL}}}[$__rate_interval]))",
                "{{le}}",
                format="heatmap",
            )
        ],
        kind="heatmap",
        calculate=False,
        yAxis={"unit": "percentunit"},
        color={"mode": "scheme", "scheme": "Oranges"},
        cellGap=1,
    )
    return item


def score_quantiles() -> Panel:
    return panel(
        "Predicted probability quantiles",
        "p50 / p90 / p99 of predicted failure probability.",
        "percentunit",
        [
            target(
                f"max by (model_version, track) (faultline:predicted_probability:p50_5m{{{SEL}}})",
                "p50 {{model_version}} {{track}}",
                "A",
            ),
            target(
                f"max by (model_version, track) (faultline:predicted_probability:p90_5m{{{SEL}}})",
                "p90 {{model_version}} {{track}}",
                "B",
            ),
            target(
                f"max by (model_version, track) (faultline:predicted_probability:p99_5m{{{SEL}}})",
                "p99 {{model_version}} {{track}}",
                "C",
            ),
        ],
    )


def live_vs_reference() -> Panel:
    live = (
        f"sum by (le) (increase(faultline_predicted_probability_bucket{{{SEL}}}[1h])) "
        f"/ ignoring (le) group_left sum(increase(faultline_predicted_probability_count{{{SEL}}}[1h]))"
    )
    return panel(
        "Score distribution: live vs reference",
        "Cumulative share of readings at or "
        "below each probability bucket: the last hour against the bundle's held-out "
        "reference.",
        "percentunit",
        [
            target(live, "live le={{le}}", "A", instant=True),
            target(
                f"max by (le) (faultline_reference_probability_ratio{{{SEL}}})",
                "reference le={{le}}",
                "B",
                instant=True,
            ),
        ],
        kind="bargauge",
        orientation="horizontal",
        displayMode="gradient",
        reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False},
    )


def inference_latency() -> Panel:
    return panel(
        "Model call duration",
        "Time of one model call (a coalesced batch, preprocessing included).",
        "s",
        [
            target(
                f"histogram_quantile(0.5, sum by (le) (rate(faultline_inference_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                "p50",
                "A",
            ),
            target(
                f"histogram_quantile(0.99, sum by (le) (rate(faultline_inference_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                "p99",
                "B",
            ),
        ],
    )


def batch_sizes() -> Panel:
    return panel(
        "Batch sizes",
        "Readings per request (p50, p99) and per coalesced model call (mean).",
        "short",
        [
            target(
                f"histogram_quantile(0.5, sum by (le) (rate(faultline_batch_size_bucket{{{SEL}}}[$__rate_interval])))",
                "request p50",
                "A",
            ),
            target(
                f"histogram_quantile(0.99, sum by (le) (rate(faultline_batch_size_bucket{{{SEL}}}[$__rate_interval])))",
                "request p99",
                "B",
            ),
            target(
                f"sum(rate(faultline_model_call_batch_size_sum{{{SEL}}}[$__rate_interval])) / sum(rate(faultline_model_call_batch_size_count{{{SEL}}}[$__rate_interval]))",
                "model call mean",
                "C",
            ),
        ],
    )


def feature_drift() -> Panel:
    return panel(
        "Input drift per feature (PSI)",
        "Population stability index of each input over the recent window against the training "
        f"reference: < {number(PSI[0])} stable, > {number(PSI[1])} significant (alert).",
        "short",
        [target(f"max by (feature) (faultline:feature_drift_psi:max{{{SEL}}})", "{{feature}}")],
        thresholds=[(PSI[0], "orange"), (PSI[1], "red")],
    )


def attribution_mean_abs() -> Panel:
    return panel(
        "Mean |attribution| per feature",
        "Mean |SHAP attribution| of each raw feature over the explainer's window of recently "
        "explained readings (solid), and on the training held-out reference (dashed): which "
        "features drive the model's decisions now. Read it next to input drift: a feature "
        "whose attribution grows while its PSI rises is what changed the decisions. No data: "
        "the explainer is off or has explained nothing yet.",
        "short",
        [
            target(
                f"max by (feature) (faultline:attribution_mean_abs:avg{{{EXPLAINED}}})",
                "{{feature}}",
                "A",
            ),
            target(
                f"max by (feature) (faultline:attribution_reference_mean_abs:avg{{{EXPLAINED}}})",
                "{{feature}} reference",
                "B",
            ),
        ],
    ) | {
        "fieldConfig": {
            "defaults": {
                "unit": "short",
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
            },
            "overrides": [
                {
                    "matcher": {"id": "byRegexp", "options": ".* reference"},
                    "properties": [
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}
                    ],
                }
            ],
        }
    }


def attribution_share() -> Panel:
    alert_for = CONFIG.alerts["attribution_shift_for"]
    return panel(
        "Attribution share: live vs reference",
        "Each feature's share of the summed mean |attribution|, live against the training "
        "reference. FaultlineAttributionShift fires when the live top feature is not the "
        f"reference's for {alert_for}.",
        "percentunit",
        [
            target(
                f"max by (feature) (faultline:attribution_share:ratio{{{EXPLAINED}}})",
                "live {{feature}}",
                "A",
                instant=True,
            ),
            target(
                f"max by (feature) (faultline:attribution_reference_share:ratio{{{EXPLAINED}}})",
                "reference {{feature}}",
                "B",
                instant=True,
            ),
        ],
        kind="bargauge",
        orientation="horizontal",
        displayMode="gradient",
        reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False},
    )


def explain_activity() -> Panel:
    return panel(
        "Explanations",
        "Readings explained per second, and p95 of the attribution time of one /v1/explain "
        "batch (right axis). The explainer runs apart from the service: /v1/predict never waits "
        "for it.",
        "short",
        [
            target(
                f"sum by (model_version) (faultline:explained_readings:rate5m{{{EXPLAINED}}})",
                "readings/s {{model_version}}",
                "A",
            ),
            target(
                f"max by (model_version) (faultline:explain_duration_seconds:p95_5m{{{EXPLAINED}}})",
                "p95 s {{model_version}}",
                "B",
            ),
        ],
    ) | {
        "fieldConfig": {
            "defaults": {
                "unit": "short",
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
            },
            "overrides": [
                {
                    "matcher": {"id": "byFrameRefID", "options": "B"},
                    "properties": [
                        {"id": "unit", "value": "s"},
                        {"id": "custom.axisPlacement", "value": "right"},
                    ],
                }
            ],
        }
    }


def score_shift() -> Panel:
    return panel(
        "Prediction shift (PSI)",
        "PSI of recent predicted probabilities against the held-out reference distribution.",
        "short",
        [
            target(
                f"max by (model_version, track) (faultline:prediction_shift_psi:max{{{SEL}}})",
                "{{model_version}} {{track}}",
            )
        ],
        thresholds=[(PSI[0], "orange"), (PSI[1], "red")],
    )


def invalid_inputs() -> Panel:
    return panel(
        "Invalid inputs by reason",
        "Rejected requests per second by reason (a "
        "request with several problems counts once per reason).",
        "reqps",
        [
            target(
                f"sum by (reason) (faultline:invalid_requests:rate5m{{{SEL}}})", "{{reason}}", "A"
            ),
            target(
                f"sum by (field) (rate(faultline_invalid_requests_total{{{SEL}}}[$__rate_interval]))",
                "field {{field}}",
                "B",
            ),
        ],
    )


def model_info() -> Panel:
    item = panel(
        "Loaded models",
        "Bundles loaded by each process: version, bundle hash, estimator and inference path.",
        "none",
        [
            target(
                f"max by (instance, track, model_version, bundle_hash, estimator, inference_path) ({INFO}{{{SEL}}})",
                "",
                "A",
                format="table",
                instant=True,
            )
        ],
        kind="table",
        showHeader=True,
    )
    return item


# --- Canary --------------------------------------------------------------------------------


def by_track(title: str, description: str, unit: str, expr: str) -> Panel:
    return panel(title, description, unit, [target(expr, "{{track}} {{model_version}}")])


def canary_panels() -> list[Panel]:
    sel = 'namespace=~"$namespace"'
    return [
        by_track(
            "Request rate by track",
            "Traffic share follows the replica ratio (or the ingress canary weight).",
            "reqps",
            f"sum by (track, model_version) (faultline:http_requests:rate5m{{{sel}}})",
        ),
        by_track(
            "5xx ratio by track",
            "Canary against stable; the canary-analysis check allows "
            f"{percent(CANARY['error_ratio_slack'])} point more than stable.",
            "percentunit",
            f"max by (track, model_version) (faultline:http_error_ratio:rate5m{{{sel}}})",
        ),
        by_track(
            "p99 latency by track",
            f"The canary-analysis check allows {number(CANARY['latency_factor'])}x stable's p99.",
            "s",
            f"max by (track, model_version) (faultline:http_request_duration_seconds:p99_5m{{{sel}}})",
        ),
        by_track(
            "Predicted failure share by track",
            "A model change shows first in how many readings it flags.",
            "percentunit",
            f"max by (track, model_version) (faultline:predicted_failure_ratio:rate5m{{{sel}}})",
        ),
        by_track(
            "Median predicted probability by track",
            "Score distribution centre per track.",
            "percentunit",
            f"max by (track, model_version) (faultline:predicted_probability:p50_5m{{{sel}}})",
        ),
        by_track(
            "Largest input drift by track",
            "Both tracks see the same inputs: drift should "
            "agree; a difference points at the canary's reference profile.",
            "short",
            f"max by (track, model_version) (faultline:feature_drift_psi:max{{{sel}}})",
        ),
        by_track(
            "Prediction shift by track",
            "PSI of each track's scores against its own bundle's reference.",
            "short",
            f"max by (track, model_version) (faultline:prediction_shift_psi:max{{{sel}}})",
        ),
        panel(
            "Score distribution by track",
            "Share of readings per probability bucket over "
            "the last 30 minutes, per track (what the canary check compares).",
            "percentunit",
            [
                target(
                    'sum by (track, le) (increase(faultline_predicted_probability_bucket{namespace=~"$namespace"}[30m])) / ignoring (le) group_left sum by (track) (increase(faultline_predicted_probability_count{namespace=~"$namespace"}[30m]))',
                    "{{track}} le={{le}}",
                    instant=True,
                )
            ],
            kind="bargauge",
            orientation="horizontal",
            displayMode="gradient",
            reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False},
        ),
    ]


# --- Capacity (kube-state-metrics and cAdvisor: data only inside a cluster) ----------------


def capacity_panels() -> list[Panel]:
    ns = 'namespace=~"$namespace"'
    hpa = CONFIG.matches("horizontalpodautoscaler")
    pod = f'{ns}, {CONFIG.matches("pod")}, container="faultline"'
    return [
        panel(
            "Replicas against the HPA",
            "Current and desired replicas and the HPA's bounds.",
            "short",
            [
                target(
                    f"max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{{{ns}, {hpa}}})",
                    "current",
                    "A",
                ),
                target(
                    f"max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_desired_replicas{{{ns}, {hpa}}})",
                    "desired",
                    "B",
                ),
                target(
                    f"max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_min_replicas{{{ns}, {hpa}}})",
                    "min",
                    "C",
                ),
                target(
                    f"max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{{{ns}, {hpa}}})",
                    "max",
                    "D",
                ),
            ],
        ),
        panel(
            "CPU per pod",
            "CPU used per pod against its request (the HPA's CPU target is a "
            "share of the request).",
            "cores",
            [
                target(
                    f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{pod}}}[$__rate_interval]))",
                    "{{pod}}",
                    "A",
                ),
                target(
                    f'max(kube_pod_container_resource_requests{{{pod}, resource="cpu"}})',
                    "request",
                    "B",
                ),
            ],
        ),
        panel(
            "Memory per pod",
            "Working-set memory per pod against its limit.",
            "bytes",
            [
                target(
                    f"sum by (pod) (container_memory_working_set_bytes{{{pod}}})", "{{pod}}", "A"
                ),
                target(
                    f'max(kube_pod_container_resource_limits{{{pod}, resource="memory"}})',
                    "limit",
                    "B",
                ),
            ],
        ),
        panel(
            "Requests per second per pod",
            "What the prometheus-adapter metric for the optional RPS-based HPA sees.",
            "reqps",
            [
                target(
                    f"sum by (pod, instance) (rate(http_requests_total{{{APP}, {PREDICT}}}[$__rate_interval]))",
                    "{{pod}}{{instance}}",
                )
            ],
        ),
    ]


def build() -> dict[str, dict[str, Any]]:
    """All dashboards, by file name."""
    return {
        "faultline-service.json": dashboard(
            "faultline-service",
            "Faultline / Service",
            "Traffic, errors, latency and SLO burn.",
            [request_rate(), error_ratio(), latency(), slo_burn(), in_flight(), status_codes()],
        ),
        "faultline-model.json": dashboard(
            "faultline-model",
            "Faultline / Model",
            "What the model predicts and what it sees.",
            [
                failure_share(),
                outcomes(),
                {**probability_heatmap(), "width": 24},
                score_quantiles(),
                live_vs_reference(),
                feature_drift(),
                attribution_mean_abs(),
                attribution_share(),
                score_shift(),
                inference_latency(),
                batch_sizes(),
                invalid_inputs(),
                model_info(),
                explain_activity(),
            ],
        ),
        "faultline-canary.json": dashboard(
            "faultline-canary",
            "Faultline / Canary",
            "Stable against canary, side by side.",
            canary_panels(),
        ),
        "faultline-capacity.json": dashboard(
            "faultline-capacity",
            "Faultline / Capacity",
            "Replicas, CPU and memory (kube-state-metrics and cAdvisor; in a cluster only).",
            capacity_panels(),
        ),
    }


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, board in build().items():
        (OUT / name).write_text(render(board))
    print(f"wrote {len(build())} dashboards to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
