"""Shared by every suite under tests/: the helpers in tests/support/ import by name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
