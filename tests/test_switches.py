"""Switch detection inside a region: known answers on the pure decisions (scripts, probes, cuts)."""

from toolkit.language import audio_evidence
from toolkit.switches import (
    heard,
    merged_spans,
    mixed_script,
    needs_closer_look,
    pieces,
    probe_spans,
    script,
    spill,
    uncovered,
)
from toolkit.transcript import Word

CANDIDATES = ("az", "ru", "en")


def _words(*spans):
    return [Word(a, b, f" w{i}") for i, (a, b) in enumerate(spans)]


def test_scripts_of_words():
    assert script("Привет,") == "Cyrl" and script("Bakıdan") == "Latn" and script("الله") == "Arab"
    assert script("2024!") is None
    az = [Word(0, 1, w) for w in " Biz Bakıdan gəldik".split(" ")[1:]]
    broke_out = az + [Word(1, 2, " говорил,"), Word(2, 3, " что")] + az
    assert not mixed_script(az)
    assert mixed_script(broke_out)
    assert not mixed_script(az + [Word(1, 2, " Ракка")] + az)  # one borrowed word is not a switch


def test_probes_cover_the_region_and_skip_short_ones():
    assert probe_spans(0.0, 2.5) == []
    spans = probe_spans(10.0, 15.5)
    assert spans[0] == (10.0, 12.0) and spans[-1] == (13.5, 15.5)
    assert all(b - a == 2.0 for a, b in spans)


def test_probe_labels():
    assert heard({"en": 0.86, "la": 0.02}, CANDIDATES, True, "az") == "en"
    assert heard({"fi": 0.6, "hu": 0.1, "en": 0.05}, CANDIDATES, True, "az") == "az"
    # p(en) 0.3 on the synthetic Azerbaijani voice: not English; not Russian either, in a Russian region
    assert heard({"en": 0.31, "th": 0.28}, CANDIDATES, True, "az") is None
    assert heard({"en": 0.31, "th": 0.28}, CANDIDATES, True, "ru") == "az"
    assert heard({"en": 0.35, "th": 0.28}, CANDIDATES, True, "en") == "az"  # English region, p(en) < 0.5
    # an outsider needs SURE, not CONFIDENT (a 2 s probe of the Azerbaijani voice measured p(de) 0.75)
    assert heard({"de": 0.75, "he": 0.1}, CANDIDATES, True, "az") is None
    assert heard({"ar": 0.9}, CANDIDATES, True, "az") == "ar"


def test_cut_where_the_probes_change_at_the_nearest_pause():
    spans = probe_spans(0.0, 8.0)  # 0-2, 1-3, ..., 6-8
    labels = ["az", "az", "az", "en", "en", "en", "en"]
    words = _words((0.1, 1.0), (1.1, 2.0), (2.05, 3.1), (3.5, 4.2), (4.3, 5.0), (5.1, 7.9))
    # the change lies between the last az probe (2-4) and the first en probe (3-5): at 3.5, and the
    # nearest pause is 3.1-3.5 (3.3), not the 4.2-4.3 one
    assert pieces(0.0, 8.0, spans, labels, "az", words) == [(0.0, 3.3), (3.3, 8.0)]
    # a joint between merged regions wins over word pauses
    assert pieces(0.0, 8.0, spans, labels, "az", words, joints=(3.0,)) == [(0.0, 3.0), (3.0, 8.0)]


def test_no_cut_on_single_stray_probes_or_one_language():
    spans = probe_spans(0.0, 8.0)
    words = _words((0.1, 7.9))
    assert pieces(0.0, 8.0, spans, ["az"] * 7, "az", words) == [(0.0, 8.0)]
    # one probe in another language is noise (measured: p(de) 0.86 on a 2 s probe of Azerbaijani)
    assert pieces(0.0, 8.0, spans, ["az", "de", "az", None, "en", "az", "az"], "az", words) == [(0.0, 8.0)]
    # ...but one probe of the region's own language at the edge counts
    assert pieces(0.0, 8.0, spans, ["en", None, "az", "az", "az", "az", "az"], "en", words) == [(0.0, 2.0),
                                                                                                (2.0, 8.0)]


def test_clear_regions_are_not_looked_at():
    russian = audio_evidence({"ru": 0.97, "uk": 0.01}, CANDIDATES)
    words = _words((1.0, 2.0), (2.1, 4.9))
    assert not needs_closer_look(russian, 1.0, 5.0, words)
    assert needs_closer_look(russian, 1.0, 8.0, words)  # 3 s of the region without words
    assert abs(uncovered(1.0, 8.0, words) - 3.1) < 1e-9
    mixed = audio_evidence({"ru": 0.55, "hu": 0.3}, CANDIDATES)
    assert needs_closer_look(mixed, 1.0, 5.0, words)
    azerbaijani = audio_evidence({"hu": 0.6, "fi": 0.2, "ru": 0.05}, CANDIDATES)
    assert azerbaijani.clear and not needs_closer_look(azerbaijani, 1.0, 5.0, words)
    assert not audio_evidence({"hu": 0.5, "en": 0.3}, CANDIDATES).clear


def test_a_merged_window_is_cut_at_the_joint_where_its_regions_differ():
    spans = merged_spans(10.0, 18.0, (14.1,))
    assert spans == [(10.0, 14.1), (14.1, 18.0)]
    words = _words((10.1, 13.9), (14.3, 17.8))
    assert pieces(10.0, 18.0, spans, ["ru", "az"], "ru", words, (14.1,), min_probes=1) == [(10.0, 14.1),
                                                                                         (14.1, 18.0)]
    assert pieces(10.0, 18.0, spans, ["ru", "ru"], "ru", words, (14.1,), min_probes=1) == [(10.0, 18.0)]


def test_the_other_languages_words_past_a_late_cut_are_spilled():
    words = [Word(8.46, 8.62, " a", 0.98), Word(9.08, 9.78, " mission,", 1.0), Word(10.04, 10.10, " a", 0.63),
             Word(10.10, 10.42, " MOUD!", 0.24)]  # measured: an English piece cut 0.5 s into Azerbaijani
    assert spill(words, 10.45, from_end=True) == 2
    assert spill(words[:2], 10.45, from_end=True) == 0  # no doubtful tail
    confident = words[:2] + [Word(10.04, 10.4, " then", 0.9)]
    assert spill(confident, 10.45, from_end=True) == 0
