"""Every format is a view of one Transcript; subtitles are read back with a real parser."""

import json

import pysubs2
import pytest

from toolkit.transcript import MediaInfo, Segment, Transcript, Word
from toolkit.writers import DEFAULT_FORMATS, available_formats, get_writer, parse_formats, write_outputs


@pytest.fixture()
def transcript() -> Transcript:
    return Transcript(
        media=MediaInfo(path="clip one.mp4", duration=12.0),
        languages=["az", "ru", "en"],
        segments=[
            Segment(0.5, 3.25, "Мы считали этот народ", "ru", "SPEAKER_00", 0.99,
                    [Word(0.5, 1.0, " Мы", 0.9), Word(1.1, 3.25, " считали", 0.8)],
                    translation={"en": "We considered this nation"}),
            Segment(4.0, 7.5, "Biz Rəqqədə\tyaşadıq", "az", "SPEAKER_01", 0.9,
                    translation={"en": "We lived in Raqqa"}, flags=["translation_unreliable"]),
            Segment(3661.0, 3662.5, "Hello", "en", "SPEAKER_00", 1.0, translation={"en": "Hello"}),
        ])


def test_json_round_trip(transcript, tmp_path):
    path = transcript.save(tmp_path / "t.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1
    assert [s["id"] for s in data["speakers"]] == ["SPEAKER_00", "SPEAKER_01"]
    assert data["speakers"][0]["total_speech"] == pytest.approx(2.75 + 1.5)
    back = Transcript.load(path)
    assert back.to_dict() == transcript.to_dict()


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
@pytest.mark.parametrize("mode", ["original", "translation", "both"])
def test_subtitles_parse_back(transcript, tmp_path, fmt, mode):
    path = get_writer(fmt, subtitles=mode).write(transcript, tmp_path / f"t.{fmt}")
    subs = pysubs2.load(str(path), encoding="utf-8")
    assert len(subs) == 3
    assert [e.start for e in subs] == [500, 4000, 3661000]
    assert [e.end for e in subs] == [3250, 7500, 3662500]
    first = subs[0].plaintext
    if fmt == "srt":  # VTT names speakers in <v> spans, which the parser strips (checked below)
        assert first.startswith("[SPEAKER_00] ")
    assert ("Мы считали" in first) == (mode != "translation")
    assert ("We considered" in first) == (mode != "original")


def test_vtt_uses_voice_spans(transcript, tmp_path):
    text = get_writer("vtt").write(transcript, tmp_path / "t.vtt").read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n") and "<v SPEAKER_01>Biz" in text and "01:01:01.000 --> 01:01:02.500" in text


def test_txt_and_tsv(transcript, tmp_path):
    """By default TXT and TSV carry the English beside the original; `original` leaves it out."""
    txt = get_writer("txt").write(transcript, tmp_path / "t.txt").read_text(encoding="utf-8").splitlines()
    assert txt[:2] == ["[00:00.500 - 00:03.250] SPEAKER_00 (ru): Мы считали этот народ",
                       "    en: We considered this nation"]
    assert txt[-1] == "[01:01:01.000 - 01:01:02.500] SPEAKER_00 (en): Hello"  # English once, not twice
    rows = get_writer("tsv").write(transcript, tmp_path / "t.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0].split("\t") == ["start", "end", "speaker", "language", "text", "translation_en",
                                   "translation_confidence", "translation_flags"]
    assert rows[2].split("\t") == ["4000", "7500", "SPEAKER_01", "az", "Biz Rəqqədə yaşadıq", "We lived in Raqqa", "",
                                   "unreliable"]
    plain = get_writer("txt", subtitles="original").write(transcript, tmp_path / "o.txt").read_text(encoding="utf-8")
    assert "We considered" not in plain
    header = get_writer("tsv", subtitles="original").write(transcript, tmp_path / "o.tsv").read_text().splitlines()[0]
    assert header.split("\t") == ["start", "end", "speaker", "language", "text"]


def flagged_transcript() -> Transcript:
    """A reliable, a flagged, an empty-but-flagged and a failed translation, as the pipeline writes them."""
    return Transcript(media=MediaInfo(path="x.mp4", duration=20.0), languages=["az", "ru"], segments=[
        Segment(0.0, 2.0, "Сколько человек было в вашей группе?", "ru", translation={"en": "How many were you?"},
                translation_confidence={"en": 0.77}),
        Segment(3.0, 5.0, "Они не объявляли людей отступниками.", "ru",
                translation={"en": "They declared people as criminals."}, translation_confidence={"en": 0.49},
                flags=["translation_unreliable", "translation_negation", "translation_terms"],
                evidence={"translation_negation": "negation in the source (не), none in the English",
                          "translation_terms": "'отступниками' (apostat…) not rendered in the English"}),
        Segment(6.0, 8.0, "Biz Rəqqədə yaşadıq.", "az", translation={"en": ""}, translation_confidence={"en": 0.0},
                flags=["translation_unreliable"], evidence={"translation_unreliable": "the model looped"}),
        Segment(9.0, 11.0, "Мы начали воевать.", "ru", translation={"en": ""}, translation_confidence={"en": 0.0},
                flags=["translation_failed"], evidence={"translation_failed": "ModelNotAvailableError: no model"}),
    ])


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitle_marks_and_no_fallback_to_the_original(tmp_path, fmt):
    t = flagged_transcript()
    english = [e.plaintext for e in pysubs2.load(str(get_writer(fmt, subtitles="translation").write(
        t, tmp_path / f"t.{fmt}")), encoding="utf-8")]
    assert english == ["How many were you?", "[?] They declared people as criminals.", "[?] [no translation]",
                       "[translation failed]"]
    both = [e.plaintext for e in pysubs2.load(str(get_writer(fmt, subtitles="both").write(
        t, tmp_path / f"b.{fmt}")), encoding="utf-8")]
    assert both[1] == "Они не объявляли людей отступниками.\n[?] They declared people as criminals."
    default = [e.plaintext for e in pysubs2.load(str(get_writer(fmt).write(t, tmp_path / f"d.{fmt}")),
                                                 encoding="utf-8")]
    assert default == [s.text for s in t.segments]  # subtitles show the original unless asked


def test_txt_and_tsv_marks(tmp_path):
    t = flagged_transcript()
    txt = get_writer("txt").write(t, tmp_path / "t.txt").read_text(encoding="utf-8").splitlines()
    assert txt[1] == "    en: How many were you?"
    assert txt[3] == "    en: [?] They declared people as criminals.  (flags: unreliable, negation, terms)"
    assert txt[5] == "    en: [?] [no translation]  (flags: unreliable)"
    assert txt[7] == "    en: [translation failed]  (flags: failed)"
    english = get_writer("txt", subtitles="translation").write(t, tmp_path / "e.txt").read_text(encoding="utf-8")
    assert "Мы начали" not in english and "Biz" not in english  # never the original in its place
    rows = [r.split("\t") for r in get_writer("tsv").write(t, tmp_path / "t.tsv").read_text(
        encoding="utf-8").splitlines()[1:]]
    assert [r[5:] for r in rows] == [["How many were you?", "0.77", ""],
                                     ["They declared people as criminals.", "0.49", "unreliable,negation,terms"],
                                     ["[no translation]", "0.00", "unreliable"],
                                     ["[translation failed]", "0.00", "failed"]]


def test_json_keeps_flags_and_evidence(tmp_path):
    t = flagged_transcript()
    back = Transcript.load(t.save(tmp_path / "t.json"))
    assert back.segments[1].evidence["translation_negation"].startswith("negation in the source (не)")
    assert back.to_dict() == t.to_dict()


def test_rttm_is_strict_and_agrees_with_json(transcript, tmp_path):
    lines = get_writer("rttm").write(transcript, tmp_path / "t.rttm").read_text().splitlines()
    assert len(lines) == 3
    for line, seg in zip(lines, transcript.segments, strict=True):
        fields = line.split(" ")
        assert len(fields) == 10 and fields[0] == "SPEAKER" and fields[1] == "clip_one" and fields[2] == "1"
        assert float(fields[3]) == pytest.approx(seg.start) and float(fields[4]) == pytest.approx(seg.duration)
        assert fields[7] == seg.speaker


def test_registry(transcript, tmp_path):
    assert {"json", "srt", "vtt", "txt", "tsv", "rttm"} <= set(available_formats())
    assert parse_formats("json, SRT") == ["json", "srt"]
    with pytest.raises(ValueError, match="unknown output format 'docx'"):
        parse_formats("json,docx")
    written = write_outputs(transcript, tmp_path / "out", "clip", list(DEFAULT_FORMATS))
    assert sorted(p.name for p in written) == ["clip.html", "clip.json", "clip.srt", "clip.tsv", "clip.txt", "clip.vtt"]
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_long_segments_become_several_cues(tmp_path):
    words = [Word(i * 0.5, i * 0.5 + 0.4, f" w{i}{'.' if i == 9 else ''}") for i in range(40)]
    text = "".join(w.word for w in words).strip()
    transcript = Transcript(media=MediaInfo(path="x.mp4"), segments=[Segment(0.0, 19.9, text, "ru", words=words)])
    subs = pysubs2.load(str(get_writer("srt").write(transcript, tmp_path / "x.srt")), encoding="utf-8")
    assert len(subs) > 2
    assert all(e.end - e.start <= 7000 for e in subs)
    assert subs[0].plaintext.endswith("w9.")  # a sentence end is a natural cut
    assert " ".join(" ".join(e.plaintext for e in subs).split()) == text  # lines wrapped, no word lost
    assert all(len(line) <= 42 for e in subs for line in e.plaintext.splitlines())


def test_long_lines_wrap_and_translations_share_the_segment_time(tmp_path):
    """Lines of at most 42 characters, at most 2 lines of each text per cue; a translation has no
    word times, so its cues share the segment's time by length."""
    original = ("Мы считали Абу Бакра аль-Багдади многобожником, потому что он собирал закят с местных "
                "жителей, и говорили об этом всем.")
    english = ("We considered Abu Bakr al-Baghdadi a polytheist because he collected zakat from the local "
               "people, and we told everyone about it, again and again, for many months in Raqqa.")
    transcript = Transcript(media=MediaInfo(path="x.mp4"), segments=[
        Segment(10.0, 20.0, original, "ru", "SPEAKER_00", translation={"en": english}),
        Segment(21.0, 23.0, "Да.", "ru", "SPEAKER_01", translation={"en": "Yes."})])
    for mode in ("original", "translation", "both"):
        subs = pysubs2.load(str(get_writer("srt", subtitles=mode).write(transcript, tmp_path / f"{mode}.srt")))
        lines = [line for e in subs for line in e.plaintext.splitlines()]
        assert lines and max(len(line) for line in lines) <= 42, mode
        assert all(len(e.plaintext.splitlines()) <= (4 if mode == "both" else 2) for e in subs), mode
        first = [e for e in subs if e.start < 21000]
        assert first[0].start == 10000 and first[-1].end == 20000  # the segment's time, shared without gaps
        assert all(a.end == b.start for a, b in zip(first, first[1:], strict=False))
        assert first[0].plaintext.startswith("[SPEAKER_00] ") and not first[1].plaintext.startswith("[")
        shown = " ".join(" ".join(e.plaintext for e in first).split())
        assert ("Багдади" in shown) == (mode != "translation") and ("Raqqa." in shown) == (mode != "original")


def test_writers_load_by_name_only_when_asked_for():
    """No import circle and no Jinja2 until a report is made: the registry holds names, not classes."""
    import subprocess
    import sys

    code = ("import sys, toolkit; from toolkit.writers import get_writer, parse_formats; "
            "assert parse_formats('all') == ['eaf', 'html', 'json', 'rttm', 'srt', 'tsv', 'txt', 'vtt']; "
            "assert not [m for m in sys.modules if m.startswith(('jinja2', 'toolkit.report', 'toolkit.elan'))]; "
            "w = get_writer('html'); assert 'toolkit.report' in sys.modules and 'jinja2' not in sys.modules; "
            "assert get_writer('mkv').extension == 'subtitled.mkv' and get_writer('.EAF').extension == 'eaf'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert {"eaf", "mkv", "html"} <= set(available_formats())
