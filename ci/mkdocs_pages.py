"""mkdocs hook: build the site from the pages where GitHub shows them.

README.md (the quick start, the site's home page) sits at the repository root and the pages in
docs/ link to it and to bench/RESULTS.md as `../README.md` and `../bench/RESULTS.md`. mkdocs only
sees docs_dir, so this hook swaps docs_dir's pages for the same files taken from the repository
root, under their repository paths: every relative link then resolves on the site as on GitHub,
and `mkdocs build --strict` fails on one that resolves in neither.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "bench/RESULTS.md"]


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for page in list(files.documentation_pages()):
        files.remove(page)
    docs = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    for path in PAGES + docs:
        files.append(File(path, str(ROOT), config.site_dir, config.use_directory_urls))
    return files
