"""The HTML report: escaping and folder indexing without a browser, behaviour in headless Chromium.

Transcripts are built from the samples' ground truth, which has the contract's shape, so
these tests don't wait on the speech pipeline. Browser tests need /usr/bin/chromium (or
$CHROMIUM) and the `playwright` Python package; Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolkit.report import HtmlWriter, media_src, render_report, report_context
from toolkit.report_index import build_reports
from toolkit.transcript import MediaInfo, Segment, SpeakerTurn, Transcript, Word
from toolkit.writers import available_formats, get_writer

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-quic", "--disable-sync"]
HOSTILE = "<script>window.pwned=1</script>"

needs_browser = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (set $CHROMIUM)")


def truth_transcript(name: str, media: Path | None = None) -> Transcript:
    """A transcript as the pipeline would write it, made from `samples/<name>.truth.json`."""
    truth = json.loads((SAMPLES / f"{name}.truth.json").read_text(encoding="utf-8"))
    ids = {label: f"SPEAKER_{i:02d}" for i, label in enumerate(truth["speakers"])}
    segments = []
    for turn in truth["turns"]:
        tokens = turn["text"].split()
        step = (turn["end"] - turn["start"]) / max(1, len(tokens))
        words = [Word(turn["start"] + k * step, turn["start"] + (k + 1) * step, f" {tok}", 0.9)
                 for k, tok in enumerate(tokens)]
        segments.append(Segment(turn["start"], turn["end"], turn["text"], turn["language"], ids[turn["speaker"]],
                                language_confidence=0.95, words=words, translation={"en": turn["translation_en"]},
                                translation_confidence={"en": 0.8}))
    return Transcript(
        MediaInfo(str(media or SAMPLES / truth["media"]), duration=truth["duration"]), segments,
        languages=list(truth["languages"]),
        models={"asr": "whisper-base (ctranslate2 int8, cpu)", "language": "audio+text fusion",
                "diarization": "ecapa embeddings + agglomerative", "translation": "opus-mt (ctranslate2)"},
        timings={"extract": 0.4, "vad": 0.3, "diarize": 2.1, "transcribe": 18.0, "translate": 1.5},
        created="2025-11-25T06:40:00+00:00")


def confession() -> Transcript:
    """confession_mixed with the marks a real run produces: doubtful words, a weak translation, a note."""
    t = truth_transcript("confession_mixed")
    t.segments[1].words[2].probability = 0.31
    t.segments[1].words[5].probability = 0.42
    t.segments[3].translation_confidence["en"] = 0.35
    t.segments[4].flags.append("translation_unreliable")
    t.notes.append("Azerbaijani speech is synthetic here; its transcription is less reliable than Russian.")
    return t


def hostile(media: Path) -> Transcript:
    t = truth_transcript("azeri_music", media)
    seg = t.segments[0]
    seg.speaker = HOSTILE
    seg.text = f'{HOSTILE} </textarea> "quoted" \'single\' \u200fRTL\u202e mark'
    seg.words = []
    seg.translation["en"] = f"{HOSTILE} & more </script>"
    t.models["asr"] = HOSTILE
    t.notes.append(HOSTILE)
    return t


def hostile_media(root: Path) -> Path:
    """A real, playable file whose path holds the payload ('/' can't be in a name, hence the folder)."""
    media = root / "<script>window.pwned=1<" / "script> it's \"x\" #1 ə.mp4"
    media.parent.mkdir(parents=True)
    shutil.copyfile(SAMPLES / "azeri_music.mp4", media)
    return media


# --- without a browser -------------------------------------------------------------------------


def test_html_writer_is_registered() -> None:
    assert "html" in available_formats()
    assert isinstance(get_writer("html"), HtmlWriter)


def test_every_hostile_string_is_escaped(tmp_path: Path) -> None:
    media = hostile_media(tmp_path)
    html = render_report(hostile(media), tmp_path / "out" / "x.html")
    assert "<script>window" not in html and "</textarea>" not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    assert html.count("<script") == 1 and html.count("</script>") == 1  # only the page's own script
    # The src must be a relative, percent-encoded URL, not raw characters.
    assert 'src="../%3Cscript%3Ewindow.pwned%3D1%3C/script%3E%20it%27s%20%22x%22%20%231%20%C9%99.mp4"' in html


def test_marks_doubtful_words_unreliable_translations_and_notes(tmp_path: Path) -> None:
    html = render_report(confession(), tmp_path / "r.html")
    assert html.count('<span class="low" title="probability') == 2
    assert html.count('class="tr unreliable"') == 2
    assert "Azerbaijani speech is synthetic here" in html


def test_flagged_empty_and_failed_translations_are_marked_with_their_evidence(tmp_path: Path) -> None:
    from .test_writers import flagged_transcript

    t = flagged_transcript()
    html = render_report(t, tmp_path / "r.html")
    assert html.count('class="tr unreliable"') == 3 and html.count('<span class="warn" title=') == 3
    assert "negation: negation in the source (не), none in the English" in html
    assert '<span class="warn">no translation</span>' in html and '<span class="warn">translation failed</span>' in html
    assert "failed: ModelNotAvailableError: no model" in html
    t.save(tmp_path / "x.json")
    build_reports(tmp_path)
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "translation failed for 1 of 4 segments, 2 of 4 translations flagged [?]" in index


def test_crosstalk_lights_both_lanes(tmp_path: Path) -> None:
    """Two speakers' segments overlap; a third voice is heard only under them: every one of them
    has its lane lit (hatched) there, and the transcript row names who else talks."""
    t = truth_transcript("russian_two_speakers")
    a, b = t.segments[0], t.segments[1]
    a.end = b.start + 1.0
    a.overlap = [SpeakerTurn(b.start, a.end, b.speaker), SpeakerTurn(2.0, 2.5, "SPEAKER_07")]
    b.overlap = [SpeakerTurn(b.start, a.end, a.speaker)]
    lanes = {lane.speaker: lane for lane in report_context(t, tmp_path / "r.html")["lanes"]}
    assert set(lanes) == {a.speaker, b.speaker, "SPEAKER_07"}
    assert len(lanes[b.speaker].crosstalk) == len(lanes[a.speaker].crosstalk) == 1
    assert len(lanes["SPEAKER_07"].crosstalk) == 1 and not lanes["SPEAKER_07"].segments
    page = render_report(t, tmp_path / "r.html")
    assert page.count('class="crosstalk"') == 3 and "+ <bdi>SPEAKER_07</bdi>" in page
    assert 'class="crosstalk-key"' in page  # the legend explains the hatching, only where there is some
    assert 'class="crosstalk-key"' not in render_report(confession(), tmp_path / "c.html")


def test_audio_only_media_gets_an_audio_player(tmp_path: Path) -> None:
    t = truth_transcript("azeri_music", tmp_path / "talk.opus")
    html = render_report(t, tmp_path / "talk.html")
    assert '<audio id="media"' in html and "<video" not in html
    assert media_src(str(tmp_path / "a b" / "ş.m4a"), tmp_path / "r.html") == "a%20b/%C5%9F.m4a"


def test_empty_transcript_renders(tmp_path: Path) -> None:
    html = render_report(Transcript(MediaInfo(str(tmp_path / "silence.wav"), duration=3.0)), tmp_path / "s.html")
    assert "No speech was found" in html


def test_build_reports_over_a_folder(tmp_path: Path) -> None:
    truth_transcript("confession_mixed").save(tmp_path / "confession_mixed.json")
    truth_transcript("russian_two_speakers").save(tmp_path / "russian two.json")
    (tmp_path / "manifest.jsonl").write_text('{"input": "a.mp4", "status": "ok"}\n', encoding="utf-8")
    (tmp_path / "settings.json").write_text('{"model": "base"}', encoding="utf-8")
    shutil.copyfile(SAMPLES / "azeri_music.truth.json", tmp_path / "azeri_music.truth.json")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")

    written = build_reports(tmp_path)

    assert [p.name for p in written] == ["confession_mixed.html", "russian two.html", "index.html"]
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["confession_mixed.html", "index.html",
                                                                "russian two.html"]
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert index.count('<tr class="video">') == 2
    assert 'href="confession_mixed.html"' in index and 'href="russian%20two.html"' in index
    assert "1:11" in index and "ru 60%, az 40%" in index  # duration and shares of speech of confession_mixed


# --- in headless Chromium ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="toolkit-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900})
            yield context
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """A loaded report, with every console error, page error and request it caused."""

    def __init__(self, context, path: Path) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())
        # Seeking needs metadata; a failed load fails here rather than as a wrong currentTime.
        self.wait_until("document.getElementById('media').readyState >= 1", timeout=15)

    def js(self, expression: str):
        return self.page.evaluate(expression)

    def wait_until(self, expression: str, timeout: float = 5) -> None:
        # Polled from here: Playwright's wait_for_function evals a string, which the page's CSP forbids.
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            self.page.wait_for_timeout(50)


@pytest.fixture
def report(browser, tmp_path: Path) -> Iterator[Page]:
    path = HtmlWriter().write(confession(), tmp_path / "confession_mixed.html")
    page = Page(browser, path)
    yield page
    page.page.close()


@needs_browser
def test_loads_without_errors_or_network(report: Page) -> None:
    media = report.js("document.getElementById('media').currentSrc")
    assert media.startswith("file://") and media.endswith("/samples/confession_mixed.mp4")
    assert report.errors == []
    assert set(report.requests) <= {report.page.url, media}, report.requests


@needs_browser
def test_one_timeline_lane_per_speaker(report: Page) -> None:
    lanes = report.js("Array.from(document.querySelectorAll('.lane')).map(l => l.dataset.speaker)")
    assert lanes == ["SPEAKER_00", "SPEAKER_02", "SPEAKER_01", "SPEAKER_03"]  # order of first speech


@needs_browser
def test_clicking_a_segment_seeks_and_highlights(report: Page) -> None:
    start = confession().segments[2].start
    report.page.locator("tr.seg").nth(2).click()
    assert abs(report.js("document.getElementById('media').currentTime") - start) < 0.05
    assert report.js("document.querySelector('tr.seg.current').dataset.i") == "2"

    fifth = confession().segments[4].start
    report.page.locator('.block[data-i="4"]').click()
    assert abs(report.js("document.getElementById('media').currentTime") - fifth) < 0.05


@needs_browser
def test_playback_highlights_and_follows_the_current_segment(report: Page) -> None:
    last = len(confession().segments) - 1
    report.js("const m = document.getElementById('media'); m.muted = true; m.currentTime = 65.2; m.play()")
    report.wait_until(f"document.querySelector('tr.seg.current')?.dataset.i === '{last}'")
    report.js("document.getElementById('media').pause()")
    # Kept in view: below the sticky player, above the bottom of the window.
    top, bottom, panel = report.js("[...(r => [r.top, r.bottom])(document.querySelector('tr.seg.current')"
                                   ".getBoundingClientRect()), document.getElementById('panel').offsetHeight]")
    assert panel <= top and bottom <= 900 + 1  # scrolling is by whole pixels, rows can be fractional
    assert report.js("document.querySelector('.block.current').dataset.i") == str(last)


@needs_browser
def test_filters_by_language_and_search(report: Page) -> None:
    report.page.select_option("#f-lang", "az")
    visible = report.js("Array.from(document.querySelectorAll('tr.seg')).filter(r => !r.hidden)"
                        ".map(r => [r.dataset.lang, r.offsetHeight > 0])")
    assert visible and all(lang == "az" and shown for lang, shown in visible)
    assert report.js("document.querySelectorAll('tr.seg[data-lang=ru]:not([hidden])').length") == 0

    report.page.select_option("#f-lang", "")
    report.page.fill("#f-text", "POLYTHEISTS")  # matches translations only, case-insensitively
    assert report.js("document.querySelectorAll('tr.seg:not([hidden])').length") == 3


@needs_browser
def test_hostile_transcript_stays_text(browser, tmp_path: Path) -> None:
    media = hostile_media(tmp_path)
    page = Page(browser, HtmlWriter().write(hostile(media), tmp_path / "out" / "hostile.html"))
    try:
        assert page.js("typeof window.pwned") == "undefined"
        assert page.errors == []
        assert HOSTILE in page.page.locator(".facts dd").first.inner_text()  # the media's path
        row = page.page.locator("tr.seg").first
        assert HOSTILE in row.locator("td.orig").inner_text()
        assert f"{HOSTILE} & more </script>" in row.locator("td.tr").inner_text()
        assert row.locator("td.speaker").inner_text() == HOSTILE
        page.page.select_option("#f-speaker", HOSTILE)  # the option value survives escaping intact
        assert page.js("document.querySelectorAll('tr.seg:not([hidden])').length") == 1
        assert page.js("document.getElementById('media').error") is None
    finally:
        page.page.close()
