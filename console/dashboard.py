"""The dashboard: the queue at a glance, with the same numbers as `GET /v1/callbacks/summary`, and a 14-day
chart of escalations drawn as inline SVG (no script, so the strict content policy holds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from console import formats
from console.context import Console
from console.render import render
from models.callbacks import CallbackStatus
from store import callback_queries as queries
from store import callback_reports

TREND_DAYS = 14

router = APIRouter(prefix="/console", include_in_schema=False)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


def trend_bars(
    days: list[tuple[date, int]], language: str, *, width: float = 560, height: float = 140
) -> list[Bar]:
    """Geometry of the escalation chart, computed here so the template holds no arithmetic."""
    top = max((count for _, count in days), default=0) or 1
    slot = width / max(len(days), 1)
    bars = []
    for index, (day, count) in enumerate(days):
        bar_height = (count / top) * (height - 20)
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.15, 1),
                y=round(height - bar_height, 1),
                width=round(slot * 0.7, 1),
                height=round(bar_height, 1),
                count=count,
                label=formats.day(day, language),
            )
        )
    return bars


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(ctx: Console) -> Response:
    async with ctx.deps.sessions() as session:
        summary = await queries.summary(session, ctx.company, now=ctx.now)
        trend = await callback_reports.escalations_per_day(
            session, ctx.company, now=ctx.now, days=TREND_DAYS, time_zone=str(ctx.zone.key)
        )
    most = max((load["open_callbacks"] for load in summary["open_per_staff"]), default=0) or 1
    return render(
        ctx,
        ctx.request,
        "dashboard.html",
        summary=summary,
        bars=trend_bars(trend, ctx.language),
        trend_total=sum(count for _, count in trend),
        most=most,
        statuses=list(CallbackStatus),
    )
