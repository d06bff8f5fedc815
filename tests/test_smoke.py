"""The package imports, every module states what it is for, and the CLI answers."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess

import panhuo
from tests.conftest import PANHUO


def test_every_module_has_a_docstring_and_all() -> None:
    missing = []
    for mod in pkgutil.walk_packages(panhuo.__path__, "panhuo."):
        m = importlib.import_module(mod.name)
        if not (m.__doc__ or "").strip():
            missing.append(f"{mod.name}: no docstring")
        if not mod.ispkg and not mod.name.split(".")[-1].startswith("_") and not hasattr(m, "__all__"):
            missing.append(f"{mod.name}: no __all__")
    assert missing == []


def test_cli_version() -> None:
    out = subprocess.run([PANHUO, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"panhuo {panhuo.__version__}"
