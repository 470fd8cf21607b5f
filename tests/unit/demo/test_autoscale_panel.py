"""The live panel shows the controller's decision when the demo autoscales; the profile's shape."""

from __future__ import annotations

from rich.console import Console

from watchtower.demo.autoscale import phases, worker_max_rate
from watchtower.demo.display import live_table
from watchtower.demo.runner import DemoState


def render(state: DemoState) -> str:
    console = Console(width=160, record=True)
    console.print(live_table(state))
    return console.export_text()


def test_panel_shows_current_desired_veto_and_reason():
    state = DemoState(workers=1, target_rate=900.0)
    state.scaling = {
        "current": 1,
        "wanted": 3,
        "veto": "cooldown",
        "actions": {"up": 1},
        "reason": "need 950/s " + "x" * 80,
    }
    text = render(state)
    assert "autoscaling" in text and "1 -> 3" in text and "load step 900/s" in text
    assert "cooldown" in text and "need 950/s" in text and "..." in text
    assert "autoscaling" not in render(DemoState())


def test_profile_steps_three_times_the_base_and_squeezes_to_the_duration():
    p = phases(200.0)
    assert [r for r, _ in p] == [200.0, 600.0, 200.0, 0.0]
    assert sum(s for _, s in phases(200.0, 150.0)) == 150.0
    assert worker_max_rate(300.0) == 500.0  # one worker carries the base at 60 %
