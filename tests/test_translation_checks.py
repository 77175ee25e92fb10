"""Consistency checks between source and English, on labelled real translations and on known answers.

`data/translation_labels.json` holds every Russian and Azerbaijani segment of a real run on the
public samples and dev scenes (Whisper base's translate task), each labelled "wrong" or "correct"
by reading it against the truth's translation, with the reason. The issue that asked for these
checks named five wrong sentences; each must be flagged, and at most one correct Russian
translation in five may be.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.translate import consistency_checks, load_glossary
from toolkit.translate.checks import skeleton

from .conftest import truth

LABELS = json.loads((Path(__file__).parent / "data" / "translation_labels.json").read_text(encoding="utf-8"))["items"]
ISSUE_SENTENCES = (  # the source sentences of the five wrong translations the issue lists
    "Мы считали этот народ многобожниками",
    "потому что считали их многобожниками",
    "потому что они не объявляли людей отступниками",
    "приказал нам воевать",
    "он собирал закят с местных жителей",
)


def _checked(item: dict) -> dict[str, str]:
    return consistency_checks(item["source"], item["language"], item["translation"])


def test_the_issues_wrong_sentences_are_all_flagged() -> None:
    issue = [i for i in LABELS if i["reason"].startswith("issue:")]
    assert len(issue) == 10  # the five sentences, in the ten segments of the three samples that speak them
    for item in issue:
        assert _checked(item), item


def test_at_most_one_correct_russian_translation_in_five_is_flagged() -> None:
    correct = [i for i in LABELS if i["language"] == "ru" and i["label"] == "correct"]
    flagged = [i for i in correct if _checked(i)]
    assert len(correct) >= 5 and len(flagged) * 5 <= len(correct), [(i["translation"], _checked(i)) for i in flagged]


def test_most_wrong_russian_translations_are_flagged_by_a_check() -> None:
    wrong = [i for i in LABELS if i["language"] == "ru" and i["label"] == "wrong"]
    flagged = [i for i in wrong if _checked(i)]
    assert len(flagged) >= 0.6 * len(wrong), len(flagged)  # 16 of 23 measured; the rest fall to low confidence


@pytest.mark.parametrize("name", ["confession_mixed", "russian_two_speakers", "real_voice_mixed"])
def test_a_real_run_flags_the_issues_sentences(run_pipeline, name) -> None:
    transcript = run_pipeline(name, diarize=True)
    turns = [t for t in truth(name)["turns"] if any(s in t["text"] for s in ISSUE_SENTENCES)]
    assert turns
    for turn in turns:
        middle = (turn["start"] + turn["end"]) / 2
        seg = next(s for s in transcript.segments if s.start <= middle <= s.end)
        if "polythe" in seg.translation["en"].lower() and "не объявляли" not in turn["text"]:
            continue  # (a later Whisper could get it right)
        assert "translation_unreliable" in seg.flags and seg.translation_confidence["en"] < 0.5, seg
        assert any(f"translation_{c}" in seg.evidence for c in ("terms", "negation", "unclear_source", "names"))


# --- known answers, one check at a time -------------------------------------------------------


@pytest.mark.parametrize("source, language, english, flagged", [
    ("Я не хотел участвовать.", "ru", "I didn't want to take part.", False),
    ("Я не хотел участвовать.", "ru", "I wanted to take part.", True),
    ("Никто не знал.", "ru", "Nobody knew.", False),
    ("Heç kimə bu planı demədik.", "az", "We told no one about this plan.", False),
    ("Heç kimə bu planı demədik.", "az", "We told everyone about this plan.", True),
    ("Biz silahları götürdük.", "az", "We did not take the weapons.", True),
    ("Biz silahları götürdük.", "az", "We took the weapons.", False),
])
def test_negation(source, language, english, flagged) -> None:
    assert ("negation" in consistency_checks(source, language, english)) == flagged


@pytest.mark.parametrize("source, language, english, evidence", [
    ("Нас было двенадцать, все из Дагестана.", "ru", "There were twelve of us, all from Dagestan.", None),
    ("Нас было двенадцать.", "ru", "There were 12 of us.", None),
    ("Нас держали в подвале три недели.", "ru", "They kept us in a basement for two or three weeks.",
     "2 in the English, not in the source"),
    ("Нас держали двадцать пять дней.", "ru", "They held us for 25 days.", None),
    ("Мы приехали в марте 2014 года.", "ru", "We came in 2014.", "month:3 in the source, not in the English"),
    ("Biz iyirmi beş gün qaldıq.", "az", "We stayed twenty five days.", None),
    ("Biz bir neçə ay yaşadıq.", "az", "We lived there for several months.", None),  # "bir" is not a count
])
def test_numbers_and_dates(source, language, english, evidence) -> None:
    assert consistency_checks(source, language, english).get("numbers") == evidence


def test_key_terms_vanish_appear_and_survive_mishearing() -> None:
    lost = consistency_checks("Он собирал закят с местных жителей.", "ru", "He collected taxes from the locals.")
    assert lost["terms"] == "'закят' (zakat…) not rendered in the English"
    invented = consistency_checks("Он собирал закид с местных жителей.", "ru", "He was going to kill the locals.")
    assert invented["terms"] == "'kill' in the English, nothing like it in the source"
    misheard = consistency_checks("Мы считали этот народом на Гобожниками.", "ru", "We considered this people as gods.")
    assert "'народом на гобожниками' (polythe…) not rendered" in misheard["terms"]
    assert "terms" not in consistency_checks("Они были многобожниками.", "ru", "They were polytheists.")


def test_user_glossary(tmp_path: Path) -> None:
    glossary = tmp_path / "terms.tsv"
    glossary.write_text("# city\nСумгаит|Sumqayıt\tSumgait|Sumqayit\n", encoding="utf-8")
    terms = load_glossary(glossary)
    assert "terms" in consistency_checks("Anam Sumqayıtda yaşayır.", "az", "My mother lives in Baku.", glossary=terms)
    assert not consistency_checks("Anam Sumqayıtda yaşayır.", "az", "My mother lives in Sumqayit.", glossary=terms)
    glossary.write_text("закят\n", encoding="utf-8")  # no English side
    with pytest.raises(ValueError, match="line 1"):
        load_glossary(glossary)


def test_names_across_scripts() -> None:
    assert skeleton("Багдади", "ru") == skeleton("Baghdadi") == "bgd"
    assert skeleton("Ракку", "ru") == skeleton("Raqqa")
    assert skeleton("Rəqqədə", "az") == skeleton("Raqqa")
    ok = "We considered Abu Bakr al-Baghdadi a polytheist."
    assert "names" not in consistency_checks("Мы считали Абу Бакра аль-Багдади многобожником.", "ru", ok)
    lost = consistency_checks("Мы приехали в Ракку весной.", "ru", "We came to the enemy of the forest in spring.")
    assert lost["names"] == "Ракку not in the English"
    added = consistency_checks("Мы считали сламской государства неверными.", "ru", "We considered the Slavs infidels.")
    assert added["names"] == "Slavs in the English, not in the source"


def test_unclear_source() -> None:
    unclear = consistency_checks("Наш руководитель приказал нам выъивать.", "ru", "Our leader ordered us to eat.")
    assert unclear["unclear_source"] == "not Russian words (misheard?): выъивать"
    assert not consistency_checks("Кто из вас отвечал за деньги?", "ru", "Which of you was responsible for the money?")
    assert consistency_checks("Hello.", "en", "Hello.") == {}
