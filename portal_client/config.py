"""Where `portal login` keeps the portal's address and the token: a file only its owner
reads, in the user's config directory (PORTAL_CONFIG_DIR overrides it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir


def config_path() -> Path:
    folder = os.environ.get("PORTAL_CONFIG_DIR") or user_config_dir("gpu-portal")
    return Path(folder) / "config.json"


def load() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def save(values: dict[str, Any]) -> Path:
    """Write the settings, readable by the owner only (0600 in a 0700 directory)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(values, handle, indent=2)
    os.chmod(path, 0o600)  # an older file may have had looser permissions
    return path
