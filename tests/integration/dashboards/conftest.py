import sys
from pathlib import Path

# watchtower_process (the `watchtower run` subprocess harness) lives with the alerting tests.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "alerting"))

from slack_fake import fake_slack  # noqa: E402,F401 (a fixture, imported so pytest finds it)
