"""Compile the portal's message catalogs (.po → .mo) without GNU gettext.

The .mo files are committed, so a fresh machine, an image or a wheel serves both languages
with no tool installed. After editing a .po file, run `make messages` (this module); the
suite's `test_compiled_catalogs_are_current` fails while a .mo says something else than its
.po.

    python -m portal.translations           # compile every catalog
    python -m portal.translations --check   # exit 1 naming each stale .mo
"""

from __future__ import annotations

import sys
from pathlib import Path

import polib  # type: ignore[import-untyped]  # a dev dependency: `make messages`

BASE_DIR = Path(__file__).resolve().parent.parent
# portal/locale (LOCALE_PATHS) and each app's own locale/.
CATALOG_GLOBS = ("*/locale/*/LC_MESSAGES/*.po",)


def catalogs() -> list[Path]:
    found: set[Path] = set()
    for pattern in CATALOG_GLOBS:
        found.update(p for p in BASE_DIR.glob(pattern) if ".venv" not in p.parts)
    return sorted(found)


def entries(path: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    """The translated messages of a .po or .mo file: (context, msgid) → translations."""
    catalog = polib.mofile(str(path)) if path.suffix == ".mo" else polib.pofile(str(path))
    result: dict[tuple[str, str], tuple[str, ...]] = {}
    for entry in catalog:
        if entry.obsolete or "fuzzy" in entry.flags:
            continue
        if entry.msgid_plural:
            forms = tuple(entry.msgstr_plural[k] for k in sorted(entry.msgstr_plural))
            if not all(forms):
                continue
            key = (entry.msgctxt or "", f"{entry.msgid}\x00{entry.msgid_plural}")
        else:
            if not entry.msgstr:
                continue
            forms = (entry.msgstr,)
            key = (entry.msgctxt or "", entry.msgid)
        result[key] = forms
    return result


def stale() -> list[Path]:
    """The .po files whose .mo is missing or says something else."""
    out = []
    for po in catalogs():
        mo = po.with_suffix(".mo")
        if not mo.exists() or entries(mo) != entries(po):
            out.append(po)
    return out


def compile_all() -> list[Path]:
    written = []
    for po in catalogs():
        catalog = polib.pofile(str(po))
        catalog.save_as_mofile(str(po.with_suffix(".mo")))
        written.append(po.with_suffix(".mo"))
    return written


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = stale()
        for po in bad:
            print(f"stale: {po.relative_to(BASE_DIR)} (run `make messages`)")
        return 1 if bad else 0
    for mo in compile_all():
        print(f"compiled {mo.relative_to(BASE_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
