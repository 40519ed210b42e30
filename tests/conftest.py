"""Test-session settings; the shared fixtures live in the plugins below (tests/plugins/)."""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # no test may reach the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = [
    "plugins.network",
    "plugins.models",
    "plugins.cli",
    "plugins.servers",
    "plugins.ray_cluster",
]
