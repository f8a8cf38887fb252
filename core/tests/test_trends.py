"""TrendQuery: the bounds every trend source and the gateway's /v1/trends rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wafermon import FieldValueError, TrendQuery, TrendSource
from wafermon.interfaces import MAX_TREND_POINTS

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def make(**kw) -> TrendQuery:
    return TrendQuery(**{"metric": "JobsFailed", "site_id": "fab1", "start": T0,
                         "end": T0 + timedelta(hours=1), **kw})  # fmt: skip


def test_a_day_of_minutes_is_the_most_one_series_holds():
    assert make(end=T0 + timedelta(days=1), period=60).period == 60
    with pytest.raises(FieldValueError) as err:
        make(end=T0 + timedelta(days=1, minutes=1), period=60)
    assert err.value.field == "period"
    assert f"more than {MAX_TREND_POINTS}: use at least 120s" in err.value.message


@pytest.mark.parametrize("period", [0, 30, 90, 86_460, 300.0])
def test_periods_are_whole_minutes_up_to_a_day(period):
    with pytest.raises(FieldValueError) as err:
        make(period=period)
    assert err.value.field == "period"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"end": T0}, "end"),
        ({"start": datetime(2026, 12, 1)}, "start"),  # naive
        ({"stat": "p99"}, "stat"),
        ({"app": "etch", "by_app": True}, "by_app"),
    ],
)
def test_bad_fields_are_named(kw, field):
    with pytest.raises(FieldValueError) as err:
        make(**kw)
    assert err.value.field == field


def test_trend_source_is_an_optional_mixin():
    class Half(TrendSource):
        def trend_metrics(self):
            return {}

    with pytest.raises(TypeError):
        Half()  # trends() missing
