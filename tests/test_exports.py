"""ELAN (.eaf) and the subtitled Matroska video, written from real pipeline runs and read back with
pympi-ling, PyAV (ffprobe's library) and pysubs2."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlparse

import av
import pympi
import pysubs2
import pytest

from toolkit.language_codes import iso639_3
from toolkit.media import ffmpeg_executable
from toolkit.mux import track_language
from toolkit.transcript import MediaInfo, Segment, Transcript
from toolkit.writers import get_writer

from .conftest import SAMPLES

FULL = {"diarize": True}


def test_eaf_holds_every_segment(run_pipeline, tmp_path: Path) -> None:
    transcript = run_pipeline("confession_mixed", **FULL)
    path = get_writer("eaf").write(transcript, tmp_path / "out" / "confession_mixed.eaf")
    eaf = pympi.Elan.Eaf(str(path))

    speakers = [s.id for s in transcript.speakers]
    assert sorted(eaf.get_tier_names()) == sorted(speakers + [f"{s} (en)" for s in speakers])
    for speaker in speakers:
        segments = [s for s in transcript.segments if s.speaker == speaker]
        assert eaf.tiers[speaker][2]["PARTICIPANT"] == speaker
        annotations = sorted(eaf.get_annotation_data_for_tier(speaker))
        assert annotations == [(round(s.start * 1000), round(s.end * 1000), s.text.strip()) for s in segments]
        translated = sorted(eaf.get_ref_annotation_data_for_tier(f"{speaker} (en)"))
        expected = [(round(s.start * 1000), round(s.end * 1000), s.translation["en"], s.text.strip())
                    for s in segments if s.translation.get("en")]
        assert translated == expected
        assert eaf.tiers[f"{speaker} (en)"][2]["PARENT_REF"] == speaker
    assert eaf.linguistic_types["translation"]["CONSTRAINTS"] == "Symbolic_Association"
    assert set(eaf.languages) == {"aze", "rus", "eng"}

    # The language of every annotation (EAF 3.0's LANG_REF, which pympi does not read)
    root = ET.parse(path).getroot()
    assert root.get("VERSION") == "3.0" and root.get("FORMAT") == "3.0"
    by_text = {s.text.strip(): iso639_3(s.language) for s in transcript.segments}
    for annotation in root.iter("ALIGNABLE_ANNOTATION"):
        assert annotation.get("LANG_REF") == by_text[annotation.findtext("ANNOTATION_VALUE")]
    times = [int(slot.get("TIME_VALUE")) for slot in root.iter("TIME_SLOT")]
    assert times == sorted(times)

    media = eaf.media_descriptors[0]
    assert Path(unquote(urlparse(media["MEDIA_URL"]).path)) == (SAMPLES / "confession_mixed.mp4").resolve()
    relative = (path.parent / unquote(media["RELATIVE_MEDIA_URL"])).resolve()
    assert relative == (SAMPLES / "confession_mixed.mp4").resolve() and media["MIME_TYPE"] == "video/mp4"


def test_eaf_keeps_a_tier_free_of_overlaps(tmp_path: Path) -> None:
    """One speaker overlapping themself (two decodes of one turn) cannot overlap on one ELAN tier."""
    t = Transcript(MediaInfo("x.wav"), [Segment(1.0, 3.0, "bir", "az"), Segment(2.5, 4.0, "iki", "az"),
                                        Segment(4.0, 4.0, "üç", "az")])
    eaf = pympi.Elan.Eaf(str(get_writer("eaf").write(t, tmp_path / "x.eaf")))
    spans = sorted(eaf.get_annotation_data_for_tier("SPEAKER_00"))
    assert [(a, b) for a, b, _ in spans] == [(1000, 3000), (3000, 4000), (4000, 4001)]
    assert "SPEAKER_00 (en)" not in eaf.get_tier_names()  # nothing translated: no empty tier
    assert eaf.media_descriptors[0]["MIME_TYPE"] == "audio/x-wav"


def _packets(path: Path, kind: str) -> list[tuple[float, bytes]]:
    """(time in seconds to the millisecond, payload) of each packet: equal means copied, not re-encoded."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        return [(round(float(p.pts * p.time_base), 3), bytes(p)) for p in container.demux(stream) if p.size]


def _subtitle_track(path: Path, n: int, out: Path) -> pysubs2.SSAFile:
    subprocess.run([ffmpeg_executable(), "-nostdin", "-y", "-loglevel", "error", "-i", str(path), "-map",
                    f"0:s:{n}", "-c", "copy", str(out)], check=True)
    return pysubs2.load(str(out), encoding="utf-8")


def test_subtitled_video(run_pipeline, tmp_path: Path) -> None:
    transcript = run_pipeline("confession_mixed", **FULL)
    path = transcript.save(tmp_path / "confession_mixed.subtitled.mkv", fmt="mkv")
    with av.open(str(path)) as container:
        streams = [(s.type, s.codec_context.name, s.metadata.get("language"), s.metadata.get("title"))
                   for s in container.streams]
    assert streams[:2] == [("video", "h264", None, None), ("audio", "aac", None, None)]
    assert streams[2:] == [("subtitle", "srt", "mul", "Original (Russian, Azerbaijani)"),
                           ("subtitle", "srt", "eng", "English (translation)")]
    for kind in ("video", "audio"):  # copied, not re-encoded: the same packets
        assert _packets(path, kind) == _packets(SAMPLES / "confession_mixed.mp4", kind)
    for n, mode in enumerate(("original", "translation")):
        track = _subtitle_track(path, n, tmp_path / f"track{n}.srt")
        srt = get_writer("srt", subtitles=mode).write(transcript, tmp_path / f"{mode}.srt")
        expected = pysubs2.load(str(srt), encoding="utf-8")
        assert len(track) == len(expected) > 0
        assert [(e.start, e.end, e.plaintext) for e in track] == [(e.start, e.end, e.plaintext) for e in expected]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_subtitle_track_language(run_pipeline) -> None:
    assert track_language(run_pipeline("russian_two_speakers", **FULL)) == "rus"
    assert track_language(run_pipeline("azeri_music", **FULL)) == "aze"
    assert track_language(Transcript(MediaInfo("x.mp4"))) == "und"


def test_subtitled_video_needs_the_media(tmp_path: Path) -> None:
    t = Transcript(MediaInfo(str(tmp_path / "gone.mp4")), [Segment(0.0, 1.0, "x", "ru")])
    with pytest.raises(OSError, match="gone.mp4: cannot write x.subtitled.mkv: no such file"):
        get_writer("mkv").write(t, tmp_path / "x.subtitled.mkv")
    assert os.listdir(tmp_path) == []


def test_subtitled_video_name_fits(run_pipeline, tmp_path: Path) -> None:
    """A stem that fits the text outputs (255 bytes with .json) gets a shortened name for its longer extension."""
    transcript = run_pipeline("azeri_music", **FULL)
    stem = "L" * 250
    path = get_writer("mkv").write(transcript, tmp_path / f"{stem}.subtitled.mkv")
    assert path.name.endswith(".subtitled.mkv") and len(path.name.encode()) == 255 and path.is_file()
