"""Generate the recording rules, alerts and canary checks from prometheus/observability.yml.

    python prometheus/build.py          # write prometheus/rules/*.yml, canary-analysis.yml
    python prometheus/build.py --check  # exit 1 when a committed file differs (make test)

One function per rule group; the PromQL reads as it would by hand. `make generate` runs this,
grafana/build.py, then refreshes the Helm chart copies and k8s/.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from observability import MODEL_INFO_BY_INSTANCE, Config, load, number, percent

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HEADER = (
    "# GENERATED from prometheus/observability.yml by prometheus/build.py: do not edit.\n"
    "# Change the config (or the generator), then run `make generate`.\n"
)
Rule = dict[str, Any]
FIVE_XX, FOUR_XX = 'status=~"5.."', 'status=~"4.."'


class _Dumper(yaml.SafeDumper):
    """Block lists indented under their key, multi-line strings as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def dump(data: dict[str, Any], comment: str) -> str:
    """YAML with the GENERATED header and a comment saying what the file holds."""
    lines = "".join(f"# {line}".rstrip() + "\n" for line in comment.strip().splitlines())
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return HEADER + lines + body


def indent(text: str, spaces: int = 2) -> str:
    return text.replace("\n", "\n" + " " * spaces)


# --- PromQL building blocks -----------------------------------------------------------------


def rate(c: Config, metric: str, window: str, *matchers: str, predict: bool = True) -> str:
    """rate() of the service's series (on /v1/predict unless predict is False)."""
    selector = ", ".join([c.job, *([c.predict] if predict else []), *matchers])
    return f"rate({metric}{{{selector}}}[{window}])"


def per_version(c: Config, series: str, extra_by: str = "") -> str:
    """An HTTP series joined with its model version, summed per the aggregation labels."""
    return f"sum by ({c.by}{extra_by}) (\n  {series}\n  {c.model_info_join})"


def requests(c: Config, window: str, *matchers: str) -> str:
    return per_version(c, rate(c, "http_requests_total", window, *matchers))


def fast(c: Config, window: str) -> str:
    bucket = rate(c, "http_request_duration_seconds_bucket", window, f'le="{c.latency_le}"')
    return per_version(c, bucket)


def latency_quantile(c: Config, q: str) -> str:
    buckets = per_version(c, rate(c, "http_request_duration_seconds_bucket", "5m"), ", le")
    return f"histogram_quantile({q}, {buckets})"


# --- recording rules ------------------------------------------------------------------------


def request_records(c: Config) -> list[Rule]:
    info = f"{c.model_info_metric}{{{c.job}}}"
    on = ", ".join(c.join_on)
    by_instance = f"max by ({on}, track, model_version) ({info})"
    return [
        {"record": MODEL_INFO_BY_INSTANCE, "expr": by_instance},
        {"record": "faultline:http_requests:rate5m", "expr": requests(c, "5m")},
        {
            # a track without any 5xx has an error rate of 0, not a missing series
            "record": "faultline:http_errors:rate5m",
            "expr": f"{requests(c, '5m', FIVE_XX)}\nor faultline:http_requests:rate5m * 0",
        },
        {"record": "faultline:http_fast_requests:rate5m", "expr": fast(c, "5m")},
        {
            "record": "faultline:http_error_ratio:rate5m",
            "expr": "faultline:http_errors:rate5m / faultline:http_requests:rate5m",
        },
        {
            "record": "faultline:http_slow_ratio:rate5m",
            "expr": "1 - faultline:http_fast_requests:rate5m / faultline:http_requests:rate5m",
        },
        {
            "record": "faultline:http_client_error_ratio:rate5m",
            "expr": f"{requests(c, '5m', FOUR_XX)}\n/ faultline:http_requests:rate5m",
        },
        *(
            {
                "record": f"faultline:http_request_duration_seconds:p{name}_5m",
                "expr": latency_quantile(c, q),
            }
            for name, q in (("50", "0.5"), ("95", "0.95"), ("99", "0.99"))
        ),
    ]


def slo_window_records(c: Config) -> list[Rule]:
    """The SLO ratios over every longer window a burn-rate alert reads."""
    windows = [w for w in c.slo_windows if w != "5m"]  # 5m: recorded with the request rates

    def errors(window: str) -> str:
        total, failed = requests(c, window), requests(c, window, FIVE_XX)
        return f"(\n  {indent(failed)}\n  or {indent(total)} * 0\n)\n/ {total}"

    def slow(window: str) -> str:
        count = per_version(c, rate(c, "http_request_duration_seconds_count", window))
        return f"1 - {fast(c, window)}\n/ {count}"

    return [
        *({"record": f"faultline:http_error_ratio:rate{w}", "expr": errors(w)} for w in windows),
        *({"record": f"faultline:http_slow_ratio:rate{w}", "expr": slow(w)} for w in windows),
    ]


def model_records(c: Config) -> list[Rule]:
    def model(metric: str, *matchers: str) -> str:
        return rate(c, metric, "5m", *matchers, predict=False)

    buckets = f"sum by ({c.by}, le) ({model('faultline_predicted_probability_bucket')})"
    failures = model("faultline_predictions_total", 'outcome="failure"')
    return [
        {
            "record": "faultline:predictions:rate5m",
            "expr": f"sum by ({c.by}) ({model('faultline_predictions_total')})",
        },
        {
            "record": "faultline:predicted_failure_ratio:rate5m",
            "expr": f"sum by ({c.by}) ({failures})\n/ faultline:predictions:rate5m",
        },
        *(
            {
                "record": f"faultline:predicted_probability:p{name}_5m",
                "expr": f"histogram_quantile({q}, {buckets})",
            }
            for name, q in (("50", "0.5"), ("90", "0.9"), ("99", "0.99"))
        ),
        {
            "record": "faultline:feature_drift_psi:max",
            "expr": f"max by ({c.by}, feature) (faultline_feature_drift_psi{{{c.job}}})",
        },
        {
            "record": "faultline:prediction_shift_psi:max",
            "expr": f"max by ({c.by}) (faultline_prediction_shift_psi{{{c.job}}})",
        },
        {
            "record": "faultline:invalid_requests:rate5m",
            "expr": f"sum by ({c.by}, reason) ({model('faultline_invalid_requests_total')})",
        },
    ]


def attribution_records(c: Config) -> list[Rule]:
    """The explainer's series, per model version and raw feature (averaged over its replicas):
    mean |attribution| live and on the training reference, and each feature's share of the sum
    over features (comparable across model versions whose attributions differ in scale)."""

    def share(record: str) -> str:
        return f"{record}\n/ ignoring (feature) group_left\nsum by ({c.by}) ({record})"

    live, reference = (
        "faultline:attribution_mean_abs:avg",
        "faultline:attribution_reference_mean_abs:avg",
    )
    buckets = (
        f"sum by ({c.by}, le) (rate(faultline_explain_duration_seconds_bucket{{{c.job}}}[5m]))"
    )
    return [
        {
            "record": live,
            "expr": f"avg by ({c.by}, feature) (faultline_attribution_mean_abs{{{c.job}}})",
        },
        {
            "record": reference,
            "expr": f"avg by ({c.by}, feature) "
            f"(faultline_attribution_reference_mean_abs{{{c.job}}})",
        },
        {"record": "faultline:attribution_share:ratio", "expr": share(live)},
        {"record": "faultline:attribution_reference_share:ratio", "expr": share(reference)},
        {
            # the smallest window of any replica: the alert's guard holds for all of them
            "record": "faultline:attribution_window_readings:min",
            "expr": f"min by ({c.by}) (faultline_attribution_window_readings{{{c.job}}})",
        },
        {
            "record": "faultline:explained_readings:rate5m",
            "expr": f"sum by ({c.by}) (rate(faultline_explained_readings_total{{{c.job}}}[5m]))",
        },
        {
            "record": "faultline:explain_duration_seconds:p95_5m",
            "expr": f"histogram_quantile(0.95, {buckets})",
        },
    ]


def recording(c: Config) -> dict[str, Any]:
    return {
        "groups": [
            {"name": "faultline.requests", "rules": request_records(c)},
            {"name": "faultline.slo-windows", "rules": slo_window_records(c)},
            {"name": "faultline.model-records", "rules": model_records(c)},
            {"name": "faultline.attribution-records", "rules": attribution_records(c)},
        ]
    }


# --- alerts ---------------------------------------------------------------------------------


def alert(c: Config, name: str, expr: str, wait: str, severity: str, **notes: str) -> Rule:
    labels = {"severity": severity, **({"slo": notes.pop("slo")} if "slo" in notes else {})}
    return {
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": labels,
        "annotations": {**notes, "runbook_url": f"{c.alerts['runbook_base']}{name}.md"},
    }


def burn(c: Config, ratio: str, budget: float) -> str:
    """The multi-window, multi-burn-rate condition on a recorded SLO ratio."""
    return "\nor\n".join(
        f"(faultline:{ratio}:rate{w.long} > {number(w.factor)} * {number(budget)}"
        f" and faultline:{ratio}:rate{w.short} > {number(w.factor)} * {number(budget)})"
        for w in c.burn_windows
    )


def slo_alerts(c: Config) -> list[Rule]:
    who = "{{ $labels.job }} ({{ $labels.track }})"
    share = (
        "{{ $value | humanizePercentage }} of "
        f"{c.handler} requests of model {{{{ $labels.model_version }}}} ({{{{ $labels.track }}}})"
    )
    wait = c["burn_rates"]["for"]
    return [
        alert(
            c,
            "FaultlineAvailabilityBudgetBurn",
            burn(c, "http_error_ratio", c.availability_budget),
            wait,
            "critical",
            slo="availability",
            summary=f"{who} is burning its availability error budget fast",
            description=f"{share} failed with 5xx over the last hour; at this rate the "
            f"{c.period.replace('d', '-day')} {percent(c.availability_objective)} % budget is "
            "gone in days.",
        ),
        alert(
            c,
            "FaultlineLatencyBudgetBurn",
            burn(c, "http_slow_ratio", c.latency_budget),
            wait,
            "critical",
            slo="latency",
            summary=f"{who} is burning its latency error budget fast",
            description=f"{share} took longer than {number(c.latency_ms)} ms; the SLO allows "
            f"{percent(c.latency_budget)} %.",
        ),
    ]


def availability_alerts(c: Config) -> list[Rule]:
    a = c.alerts
    return [
        alert(
            c,
            "FaultlineModelNotReady",
            f"min by ({', '.join(c.join_on)}) (faultline_model_ready{{{c.job}}}) == 0",
            a["model_not_ready_for"],
            "critical",
            summary="{{ $labels.instance }} has no verified model loaded",
            description="The service on {{ $labels.instance }} has reported not ready for "
            f"{minutes(a['model_not_ready_for'])}: its bundle is missing, tampered or "
            "incompatible (the reason is in /readyz and the bundle_refused log line).",
        ),
        alert(
            c,
            "FaultlineTargetDown",
            f"up{{{c.job}}} == 0",
            a["target_down_for"],
            "critical",
            summary="Prometheus cannot scrape {{ $labels.instance }}",
            description="The scrape of {{ $labels.job }} on {{ $labels.instance }} has failed "
            f"for {minutes(a['target_down_for'])}.",
        ),
        alert(
            c,
            "FaultlineTargetAbsent",
            f"absent(up{{{c.job}}})",
            a["target_absent_for"],
            "critical",
            summary="No Faultline scrape target exists",
            description="Prometheus has discovered no Faultline target for "
            f"{minutes(a['target_absent_for'])}: the service, its ServiceMonitor or the "
            "file_sd targets are gone.",
        ),
    ]


def minutes(duration: str) -> str:
    """'5m' -> '5 minutes' (alert descriptions)."""
    assert duration.endswith("m"), duration
    return f"{duration[:-1]} minutes"


def model_alerts(c: Config) -> list[Rule]:
    a = c.alerts
    psi = number(a["psi_significant"])
    return [
        alert(
            c,
            "FaultlineInputDrift",
            f"faultline:feature_drift_psi:max > {psi}",
            a["input_drift_for"],
            "warning",
            summary="Input drift on {{ $labels.feature }} for model {{ $labels.model_version }}",
            description="The population stability index of {{ $labels.feature }} over the "
            'recent window is {{ $value | printf "%.2f" }} '
            f"(> {psi}: a significant shift from the training reference) "
            "on {{ $labels.track }}.",
        ),
        alert(
            c,
            "FaultlinePredictionShift",
            f"faultline:prediction_shift_psi:max > {psi}",
            a["prediction_shift_for"],
            "warning",
            summary="Predictions of model {{ $labels.model_version }} moved away from "
            "its reference",
            description="The PSI between recent predicted probabilities and the held-out "
            'reference distribution is {{ $value | printf "%.2f" }} '
            f"(> {psi}) on {{{{ $labels.track }}}}.",
        ),
        alert(
            c,
            "FaultlineInvalidRequestSurge",
            f"faultline:http_client_error_ratio:rate5m > {number(a['invalid_ratio'])}"
            f" and faultline:http_requests:rate5m > {number(a['invalid_min_rate'])}",
            a["invalid_for"],
            "warning",
            summary="{{ $value | humanizePercentage }} of prediction requests are rejected "
            "as invalid",
            description=f"More than {percent(a['invalid_ratio'])} % of {c.handler} requests to "
            "{{ $labels.job }} ({{ $labels.track }}) got a 4xx for "
            f"{minutes(a['invalid_for'])}: a client sends a wrong schema, units or content type "
            "(see faultline_invalid_requests_total by reason and field).",
        ),
    ]


def canary_alerts(c: Config) -> list[Rule]:
    k = c.canary

    def track(record: str, name: str) -> str:
        return f'max by (namespace, job) ({record}{{track="{name}"}})'

    errors, p99 = (
        "faultline:http_error_ratio:rate5m",
        "faultline:http_request_duration_seconds:p99_5m",
    )
    expr = (
        f"(\n  {track(errors, 'canary')}\n"
        f"  > {track(errors, 'stable')} + {number(k['error_ratio_slack'])}\n)\nor\n"
        f"(\n  {track(p99, 'canary')}\n"
        f"  > {number(k['latency_factor'])} * {track(p99, 'stable')}\n)"
    )
    wait = c.alerts["canary_worse_for"]
    return [
        alert(
            c,
            "FaultlineCanaryWorseThanStable",
            expr,
            wait,
            "warning",
            summary="The canary of {{ $labels.job }} is worse than stable",
            description="The canary track's 5xx ratio exceeds stable's by more than "
            f"{percent(k['error_ratio_slack'])} point, or its p99 latency is over "
            f"{number(k['latency_factor'])}x stable's, for {minutes(wait)}. Run `faultline "
            "canary analyze` for the full verdict, then roll back.",
        )
    ]


def attribution_alerts(c: Config) -> list[Rule]:
    """The live top feature (by mean |attribution|) is not the reference's top feature. The
    reference's top feature rides along as `reference_feature` (label_replace, clamped to 1
    and multiplied in); a version without a reference, or with too few explained readings in
    the window, never fires."""
    a = c.alerts
    on = "on (namespace, job, model_version)"

    def top(record: str) -> str:
        return f"topk by (namespace, job, model_version) (1, {record})"

    live, reference = (
        top("faultline:attribution_share:ratio"),
        top("faultline:attribution_reference_share:ratio"),
    )
    relabel = '"reference_feature", "$1", "feature", "(.*)"'
    reference_feature = f"clamp(label_replace(\n  {reference},\n  {relabel}\n), 1, 1)"
    expr = (
        f"(\n  {live}\n  unless on (namespace, job, model_version, feature)\n  {reference}\n)\n"
        f"* {on} group_left (reference_feature)\n{reference_feature}\n"
        f"and {on}\nfaultline:attribution_window_readings:min >= {a['attribution_min_readings']}"
    )
    wait = a["attribution_shift_for"]
    return [
        alert(
            c,
            "FaultlineAttributionShift",
            expr,
            wait,
            "warning",
            summary="Model {{ $labels.model_version }} now decides mostly on "
            "{{ $labels.feature }}, not {{ $labels.reference_feature }}",
            description="{{ $labels.feature }} carries {{ $value | humanizePercentage }} of "
            "the mean |SHAP attribution| over the recently explained readings of model "
            "{{ $labels.model_version }} ({{ $labels.job }}); on the training held-out "
            "reference the top feature is {{ $labels.reference_feature }}. It has been so for "
            f"{minutes(wait)} over at least {a['attribution_min_readings']} explained readings: "
            "the inputs moved (check input drift) or the model meets readings unlike its "
            "training data.",
        )
    ]


def alerting(c: Config) -> dict[str, Any]:
    return {
        "groups": [
            {"name": "faultline.slo", "rules": slo_alerts(c)},
            {"name": "faultline.availability", "rules": availability_alerts(c)},
            {"name": "faultline.model-alerts", "rules": model_alerts(c)},
            {"name": "faultline.canary", "rules": canary_alerts(c)},
            {"name": "faultline.attribution-alerts", "rules": attribution_alerts(c)},
        ]
    }


# --- canary analysis ------------------------------------------------------------------------


def canary_checks(c: Config) -> list[dict[str, str]]:
    k = c.canary

    def http(metric: str, fn: str, track: str, *matchers: str) -> str:
        selector = ", ".join(["$SELECTOR", c.predict, f'track="{track}"', *matchers])
        return f"{fn}({metric}{{{selector}}}[$WINDOW])"

    def requests(track: str, *matchers: str) -> str:
        return f"sum({http('http_requests_total', 'increase', track, *matchers)})"

    def ratio(track: str) -> str:
        return f"({requests(track, FIVE_XX)} or vector(0))\n/ {requests(track)}"

    def p99(track: str) -> str:
        buckets = http("http_request_duration_seconds_bucket", "rate", track)
        return f"histogram_quantile(0.99, sum by (le) ({buckets}))"

    def cumulative(track: str) -> str:
        probability = "faultline_predicted_probability"
        bucket = f'{{$SELECTOR, track="{track}", le!~"{k["low_score_buckets"]}"}}'
        return (
            f"sum by (le) (increase({probability}_bucket{bucket}[$WINDOW]))\n"
            "/ ignoring (le) group_left "
            f'sum(increase({probability}_count{{$SELECTOR, track="{track}"}}[$WINDOW]))'
        )

    least = f">= {number(k['min_requests'])}"
    slack_ms = number(round(k["latency_slack_seconds"] * 1000, 9))
    factor = number(k["latency_factor"])
    return [
        {
            "name": "canary-traffic",
            "kind": "traffic",
            "description": "Enough canary requests in the window to judge it.",
            "query": requests("canary"),
            "condition": least,
        },
        {
            "name": "stable-traffic",
            "kind": "traffic",
            "description": "Enough stable requests in the window to compare with.",
            "query": requests("stable"),
            "condition": least,
        },
        {
            "name": "error-ratio",
            "kind": "errors",
            "description": "Canary 5xx ratio minus stable 5xx ratio (at most "
            f"{percent(k['error_ratio_slack'])} point worse).",
            "query": f"{ratio('canary')}\n- {ratio('stable')}",
            "condition": f"<= {number(k['error_ratio_slack'])}",
        },
        {
            "name": "p99-latency",
            "kind": "latency",
            "description": f"Canary p99 minus {factor}x stable p99, in seconds; {slack_ms} ms of "
            "slack, because p99 over a few hundred requests of a millisecond service moves by "
            "several ms on a busy node.",
            "query": f"{p99('canary')}\n- {factor} * {p99('stable')}",
            "condition": f"<= {number(k['latency_slack_seconds'])}",
        },
        {
            "name": "prediction-distribution",
            "kind": "model",
            "description": "Largest gap between the two tracks' cumulative predicted-probability "
            "distributions over the shared buckets from 5 % up (a Kolmogorov-Smirnov distance on "
            "the histogram): both tracks score the same inputs, so a good retrain stays close. "
            "Scores below 5 % count as one bucket: how two good models spread near-zero "
            "probabilities (0.0008 against 0.0012) never changes a decision, but the fine low "
            "buckets would make it look like a large shift.",
            "query": f"max(abs(\n  {indent(cumulative('canary'))}\n"
            f"  - {indent(cumulative('stable'))}\n))",
            "condition": f"<= {number(k['distribution_gap'])}",
        },
        {
            "name": "input-drift",
            "kind": "model",
            "description": "Largest per-feature PSI of the canary's inputs against the canary "
            "bundle's own training reference.",
            "query": 'max(faultline_feature_drift_psi{$SELECTOR, track="canary"})',
            "condition": f"<= {number(c.alerts['psi_significant'])}",
        },
    ]


def canary_analysis(c: Config) -> dict[str, Any]:
    return {"selector": c.job, "checks": canary_checks(c)}


# --- files ----------------------------------------------------------------------------------


def build(c: Config | None = None) -> dict[Path, str]:
    """Every generated file and its content."""
    c = c or load()
    slo = (
        f"SLOs ({c.period}): availability {percent(c.availability_objective)} % of {c.handler} "
        f"requests not 5xx (budget {number(c.availability_budget)});\n"
        f"latency {percent(c.latency_objective)} % of them within {number(c.latency_ms)} ms "
        f"(budget {number(c.latency_budget)}). Burn-rate alerts: multi-window, multi-burn-rate."
    )
    return {
        HERE / "rules" / "faultline-recording.yml": dump(
            recording(c),
            f"Recording rules. Every series is per ({c.by});\n"
            "HTTP series get their model_version by joining faultline_model_info on the scraped\n"
            "instance (one bundle per process).",
        ),
        HERE / "rules" / "faultline-alerts.yml": dump(alerting(c), "Alerts. " + slo),
        HERE / "canary-analysis.yml": dump(
            canary_analysis(c),
            """Canary analysis: the one definition of how a canary is judged against stable.
Each check is a PromQL query over $WINDOW comparing the canary track with the stable track,
and a condition its one number must meet. `kind: traffic` checks make the verdict
inconclusive when they fail (too little traffic to judge); any other failing check means
roll back. Used by `faultline canary analyze` (`selector` is its default $SELECTOR) and
rendered by the Helm chart into the Argo Rollouts AnalysisTemplate.""",
        ),
    }


def main() -> int:
    files = build()
    if "--check" in sys.argv:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)} (run `make generate`)")
        return 1 if stale else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(files)} files from {(HERE / 'observability.yml').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
