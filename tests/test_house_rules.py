"""House rules of the package: the core and the callbacks import neither wandb nor matplotlib at
module level."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_and_callbacks_do_not_import_wandb_or_matplotlib_at_module_level():
    files = [*(ROOT / "lightning_extremal").rglob("*.py"), *(ROOT / "callbacks").glob("*.py")]
    for path in files:
        for node in ast.parse(path.read_text()).body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] in ("wandb", "matplotlib") for n in names), path
