"""The report index's search across videos, a report opened at a moment, and the report defects fixed
with them (timings, legend, media fallback, shared notes), without a browser and in headless Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from toolkit.corpus import update_index
from toolkit.report import render_report
from toolkit.report_index import build_reports
from toolkit.search import search
from toolkit.search_keys import text_keys, words

from .test_report import HOSTILE, SAMPLES, Page, browser, confession, hostile, hostile_media, needs_browser  # noqa: F401
from .test_report import truth_transcript as sample_transcript

NAMES = ("confession_mixed", "real_voice_mixed", "russian_two_speakers", "azeri_music")
STANDARD_NOTE = "translation: the Whisper translate task (no NLLB or opus-mt model on this machine)"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in NAMES:
        t = sample_transcript(name)
        t.notes.append(STANDARD_NOTE)
        t.save(tmp_path / f"{name}.json")
    return tmp_path


# --- without a browser -------------------------------------------------------------------------


def test_header_total_is_the_run_not_the_sum(tmp_path: Path) -> None:
    t = sample_transcript("azeri_music")
    t.timings = {"extract": 0.4, "vad": 0.3, "transcribe": 18.0, "total": 20.8}  # as a batch records them
    html = render_report(t, tmp_path / "r.html")
    assert "Timings (total 20.8 s)" in html and "total 20.8 s" in html and "41." not in html
    assert "transcribe 18.0 s" in html


def test_legend_and_filter_list_only_languages_heard(tmp_path: Path) -> None:
    t = sample_transcript("azeri_music")  # candidates az, ru, en in the run; only az spoken
    t.languages = ["az", "ru", "en"]
    html = render_report(t, tmp_path / "r.html")
    legend = html[html.index('<div class="legend">'):html.index('<div class="controls">')]
    assert "Azerbaijani" in legend and "English" not in legend and "Russian" not in legend
    assert '<option value="en">' not in html and "candidates: az, ru, en" in html


def test_media_relative_then_absolute(tmp_path: Path) -> None:
    html = render_report(sample_transcript("azeri_music"), tmp_path / "r.html")
    absolute = (SAMPLES / "azeri_music.mp4").resolve().as_uri()
    relative = html.split('<source src="')[1].split('"')[0]
    assert (tmp_path / relative).resolve() == (SAMPLES / "azeri_music.mp4").resolve()
    assert html.index(f'<source src="{relative}">') < html.index(f'<source src="{absolute}">')


def test_index_notes_every_file_shares_are_said_once(folder: Path) -> None:
    extra = sample_transcript("azeri_music")
    extra.notes += [STANDARD_NOTE, "Azerbaijani speech is synthetic here."]
    extra.save(folder / "azeri_music.json")
    build_reports(folder)
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert index.count(STANDARD_NOTE) == 1 and "Notes for every file" in index
    statuses = [row.split('<td')[-1] for row in index.split('<tr class="video">')[1:]]
    assert sum("1 note" in s for s in statuses) == 1 and sum(">ok<" in s for s in statuses) == 3


def test_no_index_without_transcripts(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text('{"model": "base"}', encoding="utf-8")
    assert build_reports(tmp_path) == [] and not (tmp_path / "index.html").exists()


def test_index_data_cannot_break_out(tmp_path: Path) -> None:
    media = hostile_media(tmp_path)
    hostile(media).save(tmp_path / "out" / "hostile.json")
    build_reports(tmp_path / "out")
    index = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    block = index.split('<script type="application/json" id="search-data">')[1].split("</script>")[0]
    assert "<" not in block and ">" not in block  # tojson escapes them: no text can end the block
    data = json.loads(block)
    assert any(HOSTILE in s[5] for s in data["segments"])  # the text itself is intact
    assert index.count("<script") == 2  # the data block and the page's own script


# --- in headless Chromium ----------------------------------------------------------------------


def _open(browser, path: Path) -> Page:  # noqa: F811
    page = Page.__new__(Page)
    page.errors, page.requests = [], []
    page.page = browser.new_page()
    page.page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.page.on("request", lambda r: page.requests.append(r.url))
    page.page.goto(path.as_uri())
    return page


def _hits(page: Page) -> list[dict]:
    return page.js("Array.from(document.querySelectorAll('#hits li')).map(li => ({href: li.querySelector('a')"
                   ".getAttribute('href'), marks: Array.from(li.querySelectorAll('mark')).map(m => m.textContent), "
                   "lang: li.querySelector('.lang').textContent}))")


@needs_browser
def test_index_search_matches_toolkit_search(browser, folder: Path) -> None:  # noqa: F811
    build_reports(folder)
    update_index(folder)
    page = _open(browser, folder / "index.html")
    try:
        # The page's keys are Python's: every word of the collection, and typed queries in three scripts.
        vocabulary = sorted({w for n in NAMES for s in sample_transcript(n).segments
                             for text in (s.text, s.translation["en"]) for _, _, w in words(text)})
        vocabulary += ["Raqqa", "Rəqqə", "Багдади", "İstanbul", "Şeyx", "Chechnya", "zəkat"]
        from toolkit.search_keys import query_terms
        assert page.js(f"{json.dumps(vocabulary)}.map(w => window.toolkitQueryKeys(w))") == [
            list(query_terms(w)[0].keys) for w in vocabulary]

        for query in ("Baghdadi", "Ракка", "считали", "weapons"):
            expected = sorted(f"{x.stem}.html#t={x.start:.3f}" for x in search(folder, query, limit=None))
            assert expected, query
            page.page.fill("#q", "")
            page.wait_until("document.querySelectorAll('#hits li').length === 0")
            page.page.fill("#q", query)
            page.wait_until(f"document.getElementById('s-count').textContent.startsWith('{len(expected)} hit')")
            hits = _hits(page)
            assert sorted(h["href"] for h in hits) == expected, query
            assert all(h["marks"] for h in hits)
        page.page.fill("#q", "Baghdadi")
        page.wait_until("document.getElementById('s-count').textContent.startsWith('2 hits')")
        assert {m for h in _hits(page) for m in h["marks"]} == {"Багдади", "Baghdadi"}
        page.page.select_option("#s-lang", "az")
        page.page.fill("#q", "silahları")
        page.wait_until("document.querySelectorAll('#hits li').length > 0")
        assert {h["lang"] for h in _hits(page)} == {"az"}
        assert page.errors == [] and set(page.requests) == {page.page.url}
    finally:
        page.page.close()


@needs_browser
def test_a_hit_opens_the_report_at_its_moment(browser, folder: Path) -> None:  # noqa: F811
    build_reports(folder)
    page = _open(browser, folder / "index.html")
    try:
        page.page.fill("#q", "Багдади")
        page.wait_until("document.querySelectorAll('#hits li a').length === 2")
        first = page.page.locator("#hits li a").first
        href = first.get_attribute("href")
        start = float(href.split("#t=")[1])
        first.click()
        page.page.wait_for_url(f"**/{href}")
        page.wait_until("document.getElementById('media').readyState >= 1", timeout=15)
        page.wait_until(f"Math.abs(document.getElementById('media').currentTime - {start}) < 0.05")
        assert float(page.js("document.querySelector('tr.seg.current').dataset.start")) == pytest.approx(start)
        assert page.errors == []
    finally:
        page.page.close()


@needs_browser
def test_index_search_keeps_hostile_text_inert(browser, tmp_path: Path) -> None:  # noqa: F811
    media = hostile_media(tmp_path)
    hostile(media).save(tmp_path / "out" / "hostile.json")
    build_reports(tmp_path / "out")
    page = _open(browser, tmp_path / "out" / "index.html")
    try:
        page.page.fill("#q", "pwned")
        page.wait_until("document.querySelectorAll('#hits li').length === 1")
        assert page.js("typeof window.pwned") == "undefined"
        text = page.page.locator("#hits li .orig").inner_text()
        assert HOSTILE.replace("pwned", "") in text.replace("pwned", "")
        assert page.js("document.querySelectorAll('#hits li script, #hits li textarea').length") == 0
        page.page.select_option("#s-speaker", HOSTILE)
        page.wait_until("document.querySelectorAll('#hits li').length === 1")
        assert page.errors == []
    finally:
        page.page.close()


@needs_browser
def test_a_report_moved_alone_still_plays(browser, tmp_path: Path) -> None:  # noqa: F811
    report = tmp_path / "built" / "confession_mixed.html"
    report.parent.mkdir()
    report.write_text(render_report(confession(), report), encoding="utf-8")
    moved = tmp_path / "elsewhere" / "deeper" / "confession_mixed.html"
    moved.parent.mkdir(parents=True)
    shutil.copyfile(report, moved)  # its relative link now points nowhere
    page = Page(browser, moved)
    try:
        source = page.js("document.getElementById('media').currentSrc")
        assert source == (SAMPLES / "confession_mixed.mp4").resolve().as_uri()
        assert page.js("document.getElementById('media-error').hidden")
    finally:
        page.page.close()


def test_keys_align_with_words() -> None:
    text = "Мы считали Абу Бакра аль-Багдади, 12 раз: Rəqqədə!"
    assert len(text_keys(text, "az")) == len(words(text)) == 9
