"""The built docs load nothing from outside the site: they work on a network with no internet.

Every HTML page is parsed, and every resource a browser would fetch to show it is
checked: scripts (and the modules they import), stylesheets (and the fonts, images
and stylesheets they pull in), images, frames, preloads and icons. Links a reader
may follow (``<a href>``) are not fetched, so they may point anywhere.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

# A reference leaves the site when it names a scheme (https:, http:, ftp:...) or a
# host (//cdn.example.org/...). data: URIs are part of the page itself.
_OUTSIDE = re.compile(r"^\s*(?:(?!data:)[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)|@import\s+(['"])([^'"]+)\3""")
# import("x"), import ... from "x", export ... from "x", import "x"; not "@import" in a string.
_KEYWORD = r"(?<![\w$@.])"
_JS_IMPORT = re.compile(
    rf"""{_KEYWORD}import\s*\(\s*(['"])([^'"]+)\1\s*\)"""
    rf"""|{_KEYWORD}(?:import|export)\b[^'";]*?\bfrom\s*(['"])([^'"]+)\3"""
    rf"""|{_KEYWORD}import\s*(['"])([^'"]+)\5"""
)
_FETCHED_LINKS = {
    "stylesheet",
    "preload",
    "modulepreload",
    "prefetch",
    "icon",
    "shortcut",
    "apple-touch-icon",
    "manifest",
    "mask-icon",
}
_SOURCE_ATTRIBUTES = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "input": ("src",),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
}


def css_references(text: str) -> list[str]:
    """Return what a stylesheet fetches: its ``url(...)`` values and ``@import`` targets."""
    return [match[1] or match[3] for match in _CSS_URL.findall(text)]


def js_imports(text: str) -> list[str]:
    """Return the modules a script imports, statically or with ``import("...")``."""
    return [
        match[1] or match[3] or match[5]
        for match in _JS_IMPORT.findall(text)
        if match[1] or match[3] or match[5]
    ]


class _Resources(HTMLParser):
    """Collect every reference a browser fetches to show one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._inline: str | None = None  # "script" or "style" while inside one
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in _SOURCE_ATTRIBUTES.get(tag, ()):
            if name in values:
                self.found.extend(_srcset(values[name]) if name == "srcset" else [values[name]])
        rels = set(values.get("rel", "").lower().split())
        if tag == "link" and rels & _FETCHED_LINKS and "href" in values:
            self.found.append(values["href"])
        if "style" in values:
            self.found.extend(css_references(values["style"]))
        if tag in {"script", "style"} and "src" not in values:
            self._inline, self._text = tag, []

    def handle_data(self, data: str) -> None:
        if self._inline is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._inline:
            text = "".join(self._text)
            self.found.extend(js_imports(text) if tag == "script" else css_references(text))
            self._inline = None


def _srcset(value: str) -> list[str]:
    return [candidate.split()[0] for candidate in value.split(",") if candidate.strip()]


def page_resources(html: str) -> list[str]:
    """Return every reference a browser would fetch to show the page ``html``."""
    parser = _Resources()
    parser.feed(html)
    parser.close()
    return parser.found


def outside_references(site: Path) -> dict[str, list[str]]:
    """Map each file of ``site`` that fetches from outside it to those references."""
    found: dict[str, list[str]] = {}
    for path in sorted(site.rglob("*")):
        suffix = path.suffix.lower()
        if suffix == ".html":
            references = page_resources(path.read_text(encoding="utf-8"))
        elif suffix == ".css":
            references = css_references(path.read_text(encoding="utf-8"))
        elif suffix in {".js", ".mjs"}:
            references = js_imports(path.read_text(encoding="utf-8"))
        else:
            continue
        outside = [reference for reference in references if _OUTSIDE.match(reference)]
        if outside:
            found[str(path.relative_to(site))] = sorted(set(outside))
    return found


# --- the checker itself -------------------------------------------------------------------

PAGE = """<!DOCTYPE html><html><head>
<link rel="stylesheet" href="https://cdn.example.org/theme.css">
<link rel="preload" as="font" href="//fonts.example.org/a.woff2">
<link rel="icon" href="https://example.org/favicon.ico">
<link rel="next" href="https://example.org/next.html">
<script src="http://cdn.example.org/lib.js"></script>
<script type="module">import mermaid from "https://cdn.example.org/mermaid.mjs";
const late = import('https://cdn.example.org/late.mjs');</script>
<style>@font-face { src: url("https://fonts.example.org/b.woff2"); }</style>
</head><body>
<img src="https://example.org/a.png" srcset="_static/b.png 1x, https://example.org/c.png 2x">
<div style="background: url(https://example.org/bg.png)"></div>
<a href="https://github.com/usnistgov/NexusLIMS">NexusLIMS</a>
<img src="data:image/png;base64,AAAA">
<script src="_static/local.js"></script>
</body></html>"""


def test_checker_finds_every_kind_of_outside_fetch() -> None:
    outside = [reference for reference in page_resources(PAGE) if _OUTSIDE.match(reference)]
    assert sorted(outside) == [
        "//fonts.example.org/a.woff2",
        "http://cdn.example.org/lib.js",
        "https://cdn.example.org/late.mjs",
        "https://cdn.example.org/mermaid.mjs",
        "https://cdn.example.org/theme.css",
        "https://example.org/a.png",
        "https://example.org/bg.png",
        "https://example.org/c.png",
        "https://example.org/favicon.ico",
        "https://fonts.example.org/b.woff2",
    ]


def test_checker_keeps_links_data_and_local_files() -> None:
    inside = [reference for reference in page_resources(PAGE) if not _OUTSIDE.match(reference)]
    assert sorted(inside) == ["_static/b.png", "_static/local.js", "data:image/png;base64,AAAA"]


def test_checker_reads_stylesheets_and_modules() -> None:
    css = '@import "../basic.css"; @font-face { src: url(https://fonts.example.org/x.woff2) }'
    assert css_references(css) == ["../basic.css", "https://fonts.example.org/x.woff2"]
    js = 'import{a}from"./chunks/a.mjs";import"./b.mjs";export{c}from"./c.mjs";import("//x.org/d")'
    assert js_imports(js) == ["./chunks/a.mjs", "./b.mjs", "./c.mjs", "//x.org/d"]
    assert js_imports('var at="@import";var s="x";a.import("y")') == []


def test_checker_reports_a_page_that_loads_from_a_cdn(tmp_path: Path) -> None:
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "page.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "index.html").write_text('<script src="_static/a.js"></script>', encoding="utf-8")
    assert list(outside_references(tmp_path)) == ["guide/page.html"]


# --- the built site -------------------------------------------------------------------------


@pytest.mark.slow
def test_no_built_page_fetches_from_outside_the_site(built_docs: Path) -> None:
    """Scripts, modules, stylesheets, fonts, images, preloads, icons: all from the site."""
    pages = list(built_docs.rglob("*.html"))
    assert len(pages) > 20
    assert outside_references(built_docs) == {}


@pytest.mark.slow
def test_diagram_pages_import_mermaid_from_the_site(built_docs: Path) -> None:
    """Pages with a diagram import the copy in _static, which exists with its chunks."""
    for page, entry in [("lifecycle.html", "./_static"), ("guide/sessions.html", "../_static")]:
        imports = js_imports((built_docs / page).read_text(encoding="utf-8"))
        assert f"{entry}/mermaid/mermaid.esm.min.mjs" in imports, page
    mermaid = built_docs / "_static" / "mermaid"
    chunks = js_imports((mermaid / "mermaid.esm.min.mjs").read_text(encoding="utf-8"))
    assert chunks
    missing = [chunk for chunk in chunks if not (mermaid / chunk).is_file()]
    assert missing == []
    assert "MIT License" in (mermaid / "LICENSE").read_text(encoding="utf-8")
