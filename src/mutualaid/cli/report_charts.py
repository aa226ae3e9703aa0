"""`mutualaid report --charts DIR`: the report's charts as PNG and SVG files (matplotlib, in the
style of `mutualaid simulate`'s charts; the same report gives the same bytes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mutualaid.forecasts.outputs import pyplot, save_figure
from mutualaid.services.reports.reports import CaseGroup, PlanReport

#: Colours: the web app's primary blue, and a green and an orange that stay apart in grey print.
BLUE, GREEN, ORANGE = "#1f5fa8", "#2e8540", "#d9822b"


def _membership(plt: Any, report: PlanReport) -> Any:
    months = report.membership or []
    if not months:
        return None
    figure, axes = plt.subplots(figsize=(9, 4.5), layout="constrained")
    x = range(len(months))
    axes.bar(x, [m.joined for m in months], color=GREEN, label="joined")
    axes.bar(x, [-(m.left + m.ended) for m in months], color=ORANGE, label="left or ended")
    axes.axhline(0, color="#888", linewidth=0.8)
    axes.set_ylabel("memberships in the month")
    active = axes.twinx()
    active.plot(
        x,
        [m.active_at_end for m in months],
        color=BLUE,
        linewidth=1.8,
        marker="o",
        markersize=3,
        label="active at month end",
    )
    active.set_ylabel("active at month end")
    _months_axis(axes, [m.month for m in months])
    handles = axes.get_legend_handles_labels()
    more = active.get_legend_handles_labels()
    axes.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left")
    axes.set_title(f"{report.plan_code}: membership flows")
    return figure


def _months_axis(axes: Any, labels: Sequence[str]) -> None:
    step = max(1, len(labels) // 12)
    axes.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right")
    axes.grid(alpha=0.3, axis="y")


def _shares(plt: Any, report: PlanReport) -> Any:
    periods = [p for p in report.shares or [] if p.share_per_member_fen is not None]
    if not periods:
        return None
    figure, axes = plt.subplots(figsize=(9, 4.5), layout="constrained")
    labels = [p.publicity_on.isoformat() for p in periods]
    axes.plot(
        range(len(periods)),
        [(p.share_per_member_fen or 0) / 100 for p in periods],
        color=BLUE,
        linewidth=1.8,
        marker="o",
        markersize=3,
    )
    axes.set_ylabel("share per member (yuan)")
    _months_axis(axes, labels)
    axes.set_title(f"{report.plan_code}: share per member per period")
    return figure


def _decisions(plt: Any, report: PlanReport) -> Any:
    months = [t for t in report.decision_times or [] if t.month != "all"]
    if not months:
        return None
    figure, axes = plt.subplots(figsize=(9, 4.5), layout="constrained")
    x = range(len(months))
    axes.plot(x, [t.median_days for t in months], color=BLUE, marker="o", label="median")
    axes.plot(x, [t.p90_days for t in months], color=ORANGE, marker="o", label="90th percentile")
    axes.set_ylabel("days from report to decision")
    _months_axis(axes, [t.month for t in months])
    axes.legend(loc="upper left")
    axes.set_title(f"{report.plan_code}: time to decision")
    return figure


def _cases(
    title: str, groups: Sequence[CaseGroup] | None, limit: int = 15
) -> Callable[[Any, PlanReport], Any]:
    def draw(plt: Any, report: PlanReport) -> Any:
        shown = list(groups or [])[:limit]
        if not shown:
            return None
        figure, axes = plt.subplots(figsize=(9, 0.9 + 0.35 * len(shown)), layout="constrained")
        y = range(len(shown))[::-1]
        axes.barh(y, [g.cases for g in shown], color="#c9d7ea", label="reported")
        axes.barh(y, [g.approved for g in shown], color=BLUE, height=0.5, label="approved")
        axes.set_yticks(list(y), [g.name_en for g in shown])
        axes.set_xlabel("cases")
        axes.grid(alpha=0.3, axis="x")
        axes.legend(loc="lower right")
        axes.set_title(f"{report.plan_code}: {title}")
        return figure

    return draw


def _fairness(plt: Any, report: PlanReport) -> Any:
    fairness = report.fairness
    bands = [b for b in fairness.bands if b.members] if fairness else []
    if not fairness or not bands:
        return None
    figure, axes = plt.subplots(figsize=(9, 4.5), layout="constrained")
    width = 0.8 / len(fairness.rules)
    for index, (rule, colour) in enumerate(
        zip(fairness.rules, (BLUE, GREEN, ORANGE), strict=False)
    ):
        axes.bar(
            [i + (index - (len(fairness.rules) - 1) / 2) * width for i in range(len(bands))],
            [b.ratio[rule] or 0 for b in bands],
            width,
            color=colour,
            label=rule,
        )
    axes.axhline(1, color="#444", linewidth=1, linestyle="--")
    axes.set_xticks(range(len(bands)), [b.band for b in bands])
    axes.set_xlabel("age band")
    axes.set_ylabel("contribution / (benefit × (1 + fee))")
    axes.grid(alpha=0.3, axis="y")
    axes.legend(loc="upper right")
    axes.set_title(f"{report.plan_code}: fairness by age band ({fairness.source} incidence)")
    return figure


def write_report_charts(report: PlanReport, directory: Path) -> list[Path]:
    """One PNG and one SVG per chart that has something to show."""
    plt = pyplot()
    directory.mkdir(parents=True, exist_ok=True)
    charts: list[tuple[str, Callable[[Any, PlanReport], Any]]] = [
        ("membership", _membership),
        ("shares", _shares),
        ("decisions", _decisions),
        ("cases_by_illness", _cases("cases by illness", report.cases_by_illness)),
        ("cases_by_age_band", _cases("cases by age at diagnosis", report.cases_by_age_band)),
        ("cases_by_province", _cases("cases by province", report.cases_by_province)),
        ("fairness", _fairness),
    ]
    written: list[Path] = []
    for stem, draw in charts:
        figure = draw(plt, report)
        if figure is not None:
            written += save_figure(plt, figure, directory, stem)
    return written
