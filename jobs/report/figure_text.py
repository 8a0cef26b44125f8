"""Text in the report's figures is text: parameter names and values, metric names and run ids are
drawn as written, whatever they hold.

- ``text.parse_math`` off: matplotlib would read ``$...$`` as mathtext, and a value such as
  ``$SCRATCH/data_$\\frac{`` stops the report with a ``ParseSyntaxException``.
- Non-Latin names (a CJK metric name): matplotlib's default DejaVu Sans has no CJK glyphs, so
  it warns once per glyph and draws boxes. The figures' font family lists DejaVu Sans first and
  then every CJK font found on this machine (matplotlib falls back glyph by glyph). Fonts are
  looked up by file, as matplotlib's font cache, built once per user, does not see fonts
  installed after it (tests/install-system-deps.sh installs ``fonts-wqy-microhei``). Without
  such a font the SVG keeps the text as text (the browser draws it), the PNG shows boxes, and
  nothing warns.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Font files of Debian's CJK font packages, by the family name matplotlib reads from them.
CJK_FONT_FILES = {
    "wqy-microhei.ttc": "WenQuanYi Micro Hei",  # fonts-wqy-microhei (5 MB)
    "wqy-zenhei.ttc": "WenQuanYi Zen Hei",  # fonts-wqy-zenhei
    "NotoSansCJK-Regular.ttc": "Noto Sans CJK JP",  # fonts-noto-cjk
    "DroidSansFallbackFull.ttf": "Droid Sans Fallback",  # fonts-droid-fallback
}


@functools.cache
def _families() -> tuple[str, ...]:
    from matplotlib import font_manager

    known = {font.name for font in font_manager.fontManager.ttflist}
    found = []
    for path in map(Path, font_manager.findSystemFonts()):
        family = CJK_FONT_FILES.get(path.name)
        if family is None:
            continue
        if family not in known:
            try:
                font_manager.fontManager.addfont(str(path))
            except (OSError, RuntimeError, ValueError):
                continue  # unreadable font file: draw without it
            known = {font.name for font in font_manager.fontManager.ttflist}
        if family in known and family not in found:
            found.append(family)
    return ("DejaVu Sans", *found)


def figure_rc() -> dict[str, Any]:
    return {"text.parse_math": False, "font.family": list(_families())}


@contextmanager
def text_as_text() -> Iterator[None]:
    """Build and save figures inside this: tick labels are made when a figure is drawn."""
    from matplotlib import rc_context

    # the CJK fonts have one weight: a bold title in them is drawn regular, which matplotlib's
    # font manager logs as a warning ("Failed to find font weight bold") each time
    fonts_log = logging.getLogger("matplotlib.font_manager")
    level = fonts_log.level
    fonts_log.setLevel(logging.ERROR)
    try:
        with rc_context(figure_rc()), warnings.catch_warnings():  # type: ignore[arg-type]
            # no CJK font here: the SVG keeps the text for the browser; per-glyph warnings help
            # nobody
            warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
            yield
    finally:
        fonts_log.setLevel(level)
