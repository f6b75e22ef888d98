"""The documentation stays true to the code: docs/configuration.md names every config key,
and only real ones; the README and docs link only to files that exist (their commands:
tests/test_docs_commands.py)."""

from __future__ import annotations

import re
from pathlib import Path

from lightning_extremal.config.compose import valid_keys

ROOT = Path(__file__).resolve().parents[1]
#: The pages users read: the README and the reference pages.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_keys(text: str) -> set[str]:
    """Keys in the first column of the reference table: ``group.field`` cells, where later
    bare names in the same cell (``method.lr``, ``momentum``) belong to the same group."""
    keys = set()
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        group = None
        for name in re.findall(r"`([^`]+)`", line.split("|")[1]):
            if "." in name:
                group, _, field = name.partition(".")
                keys.add(name)
            elif group is not None:
                keys.add(f"{group}.{name}")
            else:
                keys.add(name)
    return keys


def test_configuration_page_names_every_key_and_only_real_ones():
    text = (ROOT / "docs" / "configuration.md").read_text()
    reference = text[text.index("## Reference") :]
    documented, real = documented_keys(reference), set(valid_keys())
    assert not documented - real, f"documented but not in the config: {sorted(documented - real)}"
    assert not real - documented, f"in the config but not documented: {sorted(real - documented)}"


def test_links_in_readme_and_docs_point_at_files():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if target.startswith("http"):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_readme_fits_on_a_few_screens():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150
