"""Shared test configuration: Hypothesis profiles first (HYPOTHESIS_PROFILE=dev|ci)."""

from __future__ import annotations

import os

from hypothesis import settings

# dev: quick feedback while editing. ci: thorough (stateful tests run 2,000 programs),
# no deadline (no timed assertions in tests), and a failure prints the blob that replays it.
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("ci", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
