"""Where the project's files live, relative to the package (works from any working directory)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "static"
TEMPLATES_DIR = ROOT / "templates"
SMARTSCRIPT_DIR = ROOT / "smartscript"
