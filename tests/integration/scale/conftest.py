import sys
from pathlib import Path

# The enricher tests' helpers (expected state, Redis state) are reused to account for every event.
sys.path.insert(0, str(Path(__file__).parents[1] / "pipelines"))
sys.path.insert(0, str(Path(__file__).parent))
