"""The built docs in a real browser with no network: the diagrams render, nothing errs.

Chromium (headless, a fresh profile, every host but 127.0.0.1 unreachable) opens the
pages served from the built site. Without Chromium the tests skip saying how to
install it, except in CI, where ``.ci/run`` installs it and sets
``NEXUSLIMS_LIFECYCLE_REQUIRE_BROWSER=1`` so that its absence fails. A screenshot of
the rendered lifecycle is kept at ``docs/_build/browser/lifecycle.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import REQUIRE_ENV, find_chromium, offline_browser, serve
from docs_site import ROOT
from nexuslims_lifecycle.enums import RecordStatus

SCREENSHOT = ROOT / "docs" / "_build" / "browser" / "lifecycle.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RENDERED = '.mermaid[data-processed="true"] svg'
LOADED = "document.readyState === 'complete' || null"


def diagram_text(*words: str) -> str:
    """A script giving the text of the first diagram drawn, once it holds every word."""
    return (
        f"(() => {{ const text = document.querySelector({RENDERED!r})?.textContent ?? '';"
        f" return {list(words)!r}.every((word) => text.includes(word)) ? text : null; }})()"
    )


def page_errors(errors: list[str], site: str) -> list[str]:
    """Errors the page caused: all but a 404 for /favicon.ico, which no page asks for.

    Chromium requests /favicon.ico of every site on its own; the docs have no icon.
    """
    return [error for error in errors if not error.endswith(f" {site}favicon.ico")]


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


@pytest.mark.slow
def test_lifecycle_page_draws_every_status_offline(
    chromium: str, built_docs: Path, tmp_path: Path
) -> None:
    """Mermaid, served by the site itself, draws the lifecycle; the console stays clean."""
    with serve(built_docs) as site, offline_browser(chromium, tmp_path / "profile") as browser:
        browser.open(f"{site}lifecycle.html")
        text = browser.wait_for(diagram_text(*(status.value for status in RecordStatus)))
        shot = browser.screenshot(RENDERED if text else "body", SCREENSHOT)
    print(f"screenshot of the lifecycle page: {shot}")  # noqa: T201 - the artefact's path
    assert text is not None, f"no diagram naming every status was drawn: {browser.errors}"
    assert page_errors(browser.errors, site) == []
    assert shot.read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.slow
def test_hooks_flowchart_draws_offline_from_a_subdirectory(
    chromium: str, built_docs: Path, tmp_path: Path
) -> None:
    """A page one level down imports Mermaid through ../_static, and draws too."""
    with serve(built_docs) as site, offline_browser(chromium, tmp_path / "profile") as browser:
        browser.open(f"{site}guide/sessions.html")
        text = browser.wait_for(diagram_text("before_", "on_enter_", "listeners"))
    assert text is not None, f"no diagram of the hooks was drawn: {browser.errors}"
    assert page_errors(browser.errors, site) == []


CDN_PAGE = """<!DOCTYPE html><html><head><title>CDN</title></head><body>
<pre class="mermaid">stateDiagram-v2
    A --> B</pre>
<img src="https://93.184.216.34/logo.png" alt="by address, not by name">
<script type="module">
import mermaid from "https://cdn.jsdelivr.net/npm/mermaid@11.17.2/dist/mermaid.esm.min.mjs";
await mermaid.run();
</script>
<script>console.error("something went wrong");</script>
</body></html>
"""


@pytest.mark.slow
def test_a_page_that_needs_the_network_fails_here(chromium: str, tmp_path: Path) -> None:
    """The harness can fail: a CDN import and an address are unreachable, errors are seen."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text(CDN_PAGE, encoding="utf-8")
    with (
        serve(tmp_path / "site") as site,
        offline_browser(chromium, tmp_path / "profile") as browser,
    ):
        browser.open(f"{site}index.html")
        assert browser.wait_for(LOADED) is True
        drawn = browser.wait_for(f"document.querySelectorAll({RENDERED!r}).length")
    assert drawn == 0
    assert "console.error: something went wrong" in browser.errors
    failed = [error for error in browser.errors if error.startswith("network: ")]
    assert any("cdn.jsdelivr.net" in error for error in failed), browser.errors
    assert any("93.184.216.34" in error for error in failed), browser.errors


# --- without a browser ---------------------------------------------------------------------


def test_without_chromium_a_developer_is_told_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install -y chromium"):
        find_chromium()


def test_without_chromium_ci_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=r"Chromium not found.*apt-get install"):
        find_chromium()


def test_chromium_is_found_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = tmp_path / "chromium-browser"
    binary.write_text("#!/bin/sh\n", encoding="utf-8")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_chromium() == str(binary)
