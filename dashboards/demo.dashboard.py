"""Demo service: RED (Rate, Errors, Duration) and the SLO burn rate a lab often starts from.

The SLO is measured where users are, on the client (the load generator): 99% of requests succeed
(outcome "ok"; an error or a timeout counts against it). Network faults never reach the server's own
counters, so a server-side SLI would miss them. Burn rate = error ratio / error budget (1%); a burn rate
of 1 spends the budget exactly over the SLO period, 14.4 spends 2% of a 30-day budget in an hour.
The burn-rate series come from recording rules in deploy/prometheus/rules/slo.yml (docs/alerts.md).
"""

from obslab.dashboards.panels import dashboard, heatmap, row, sel, stat, thresholds, timeseries

RI = "$__rate_interval"
S = sel()
SLO_BUDGET = 0.01  # keep in step with deploy/prometheus/rules/slo.yml
BURN_STEPS = thresholds((None, "green"), (6, "orange"), (14.4, "red"))


def quantiles(metric: str, legend: str) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{S}[{RI}])))",
            f"p{int(q * 100)} {legend}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


slo = row(
    "SLO: 99% of client requests succeed",
    [
        stat(
            "Availability (5m)",
            "Share of the load generator's requests that succeeded over the last 5 minutes. The objective is "
            "99%. Bad: below 99%.",
            (f"1 - instance:obslab_demo_client_errors:ratio_rate5m{S}", "5m"),
            "percentunit",
            w=6,
            decimals=2,
            steps=thresholds((None, "red"), (0.99, "green")),
        ),
        stat(
            "Burn rate (5m)",
            "How fast the error budget burns: 5-minute error ratio / 1%. 1 = exactly on budget. Bad: above "
            "14.4 (the fast-burn page threshold), above 6 (slow burn).",
            (f"instance:obslab_demo_client_errors:ratio_rate5m{S} / {SLO_BUDGET}", "5m"),
            "short",
            w=6,
            decimals=1,
            steps=BURN_STEPS,
        ),
        stat(
            "Burn rate (1h)",
            "The same over the last hour: the long window of the slow-burn alert. Bad: above 6.",
            (f"instance:obslab_demo_client_errors:ratio_rate1h{S} / {SLO_BUDGET}", "1h"),
            "short",
            w=6,
            decimals=1,
            steps=BURN_STEPS,
        ),
        stat(
            "Client requests per second",
            "Requests the load generator sends per second (steady by design: a drop means requests hang).",
            (f"sum(rate(obslab_demo_client_requests_total{S}[{RI}]))", "req/s"),
            "reqps",
            w=6,
            steps=thresholds((None, "blue")),
        ),
        timeseries(
            "Burn rate, multi-window",
            "Error-budget burn rate over 30s, 5m and 1h. The fast-burn alert needs BOTH 5m and 30s above "
            "14.4 (the short window makes it stop soon after the fault does); the slow-burn alert needs 1h "
            "and 5m above 6. Windows are scaled down from the SRE workbook's 1h/5m and 6h/30m so a "
            "10-minute lab shows them.",
            [
                (f"instance:obslab_demo_client_errors:ratio_rate30s{S} / {SLO_BUDGET}", "30s"),
                (f"instance:obslab_demo_client_errors:ratio_rate5m{S} / {SLO_BUDGET}", "5m"),
                (f"instance:obslab_demo_client_errors:ratio_rate1h{S} / {SLO_BUDGET}", "1h"),
            ],
            "short",
            w=24,
            min=0,
            steps=BURN_STEPS,
        ),
    ],
)

red = row(
    "RED: server side",
    [
        timeseries(
            "Rate by status code",
            "Requests the service answered per second, by HTTP status. Bad: the total falling while clients "
            "keep sending (requests stuck or lost before the server).",
            (f"sum by (code) (rate(obslab_demo_requests_total{S}[{RI}]))", "{{code}}"),
            "reqps",
            min=0,
            stack=True,
        ),
        timeseries(
            "Errors (server 5xx ratio)",
            "Share of answered requests that were 5xx. Bad: above 1%. Timeouts and lost connections do not "
            "appear here: compare with the client's error ratio.",
            [
                (
                    f"(sum(rate(obslab_demo_requests_total{sel(code='~5..')}[{RI}])) or vector(0)) / "
                    f"sum(rate(obslab_demo_requests_total{S}[{RI}]))",
                    "server 5xx",
                ),
                (f"instance:obslab_demo_client_errors:ratio_rate30s{S}", "client errors (30s)"),
            ],
            "percentunit",
            min=0,
            steps=thresholds((None, "green"), (0.01, "red")),
        ),
        timeseries(
            "Duration percentiles (server)",
            "p50/p90/p99 of the time the service took to answer. Bad: p99 far above p50 (some requests "
            "queue: CPU, disk or a lock).",
            quantiles("obslab_demo_request_duration_seconds", "server"),
            "s",
            min=0,
        ),
        heatmap(
            "Duration heatmap (server)",
            "Every request's duration, bucketed. Two bands mean two populations: the slow one is the fault.",
            f"sum by (le) (rate(obslab_demo_request_duration_seconds_bucket{S}[{RI}]))",
            w=24,
            h=8,
        ),
    ],
)

client = row(
    "Client (load generator)",
    [
        timeseries(
            "Client outcomes",
            "What the load generator saw, per second: ok, error (a refused or reset connection, a 5xx) or "
            "timeout. Bad: any timeouts (packet loss, a full accept queue, a stalled server).",
            (f"sum by (outcome) (rate(obslab_demo_client_requests_total{S}[{RI}]))", "{{outcome}}"),
            "reqps",
            w=12,
            min=0,
            stack=True,
        ),
        timeseries(
            "Duration percentiles (client)",
            "p50/p90/p99 of the round trip as the client measured it: server time plus the network (and "
            "retransmissions). Client p99 >> server p99 points at the network.",
            quantiles("obslab_demo_client_request_duration_seconds", "client"),
            "s",
            w=12,
            min=0,
        ),
    ],
)

dashboard = dashboard(
    uid="obslab-demo",
    title="obslab / Demo service",
    description="The demo service's RED metrics and its availability SLO burn rate (client view).",
    anchor="obslab_demo_requests_total",
    tags=["demo", "red", "slo"],
    panels=[*slo, *red, *client],
)
