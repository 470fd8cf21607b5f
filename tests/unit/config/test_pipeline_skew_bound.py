"""pipeline.max_future_skew must stay below watermark_delay: otherwise an admitted event poisons the watermark."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from watchtower.config.models import PipelineConfig


def test_the_default_bound_is_five_minutes_below_the_ten_minute_delay() -> None:
    p = PipelineConfig()
    assert (p.max_future_skew, p.watermark_delay) == (300.0, 600.0)


@pytest.mark.parametrize("skew,delay,ok", [("30s", "1m", True), ("1m", "1m", False), ("10m", "5m", False)])
def test_the_bound_is_checked_against_the_delay(skew: str, delay: str, ok: bool) -> None:
    if ok:
        PipelineConfig(max_future_skew=skew, watermark_delay=delay)
    else:
        with pytest.raises(ValidationError, match="max_future_skew .* must be below watermark_delay"):
            PipelineConfig(max_future_skew=skew, watermark_delay=delay)
