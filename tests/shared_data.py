"""Where the tests find the public benchmark files: $REASONLAB_DATA_DIR if set, else ../shared/data
beside the repository (tests that need them skip, saying so, when neither holds them)."""

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("REASONLAB_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
