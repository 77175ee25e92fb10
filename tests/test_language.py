from toolkit.language import TextLanguageId, audio_allows, audio_evidence

CANDIDATES = ("az", "ru", "en")


def test_confident_russian_is_decided_by_audio():
    ev = audio_evidence({"ru": 0.93, "uk": 0.04, "en": 0.01, "hu": 0.02}, CANDIDATES)
    assert ev.primary == "ru" and ev.alternatives == () and ev.confidence > 0.95


def test_synthetic_azerbaijani_profile_rules_out_the_well_heard():
    # measured on the samples: top labels hu/th/fi, p(ru) <= 0.07, p(az) <= 0.07, p(en) up to ~0.1
    ev = audio_evidence({"hu": 0.4, "fi": 0.2, "en": 0.1, "ru": 0.06, "az": 0.03}, CANDIDATES)
    assert ev.primary == "az"
    assert ev.confidence >= 0.9


def test_turkish_label_counts_for_azerbaijani_never_reported():
    ev = audio_evidence({"tr": 0.8, "az": 0.1, "en": 0.1}, CANDIDATES)
    assert ev.primary == "az"
    assert "tr" not in ev.masses


def test_english_needs_confident_audio():
    assert audio_evidence({"en": 0.9, "ru": 0.05}, CANDIDATES).primary == "en"
    assert audio_evidence({"en": 0.9, "ru": 0.05}, CANDIDATES).alternatives == ()
    assert audio_evidence({"en": 0.3, "hu": 0.5}, CANDIDATES).primary == "az"
    # p(en) of 0.5-0.8 next to a low-resource candidate: both are decoded and compared
    doubtful = audio_evidence({"en": 0.6, "hu": 0.3}, CANDIDATES)
    assert doubtful.primary == "en" and doubtful.alternatives == ("az",)
    assert audio_evidence({"en": 0.6, "hu": 0.3}, ("en", "ru")).alternatives == ()


def test_text_id_knows_azerbaijani_where_langdetect_says_turkish():
    from langdetect import DetectorFactory, detect

    text = "Biz Rəqqədə bir neçə ay yaşadıq və heç kimə bu planı demədik."
    DetectorFactory.seed = 0
    assert detect(text) != "az"  # why lingua is here: langdetect has no Azerbaijani profile
    said, confidence = TextLanguageId(CANDIDATES).detect(text)
    assert said == "az" and confidence > 0.8
    assert TextLanguageId(CANDIDATES).detect("Мы начали воевать против Исламского государства")[0] == "ru"
    assert TextLanguageId(CANDIDATES).detect("We lived in Raqqa for several months")[0] == "en"
    assert TextLanguageId(CANDIDATES).detect("Да")[0] is None  # too short to be evidence


def test_text_cannot_bring_back_a_language_the_audio_ruled_out():
    azerbaijani_like = audio_evidence({"hu": 0.6, "en": 0.05, "ru": 0.02}, CANDIDATES)
    assert not audio_allows(azerbaijani_like, "en") and not audio_allows(azerbaijani_like, "ru")
    assert audio_allows(azerbaijani_like, "az")  # low-resource: Whisper's low p(az) proves nothing
    assert audio_allows(audio_evidence({"ru": 0.7, "en": 0.25}, CANDIDATES), "en")


def test_a_confident_language_outside_the_candidates_is_itself():
    verse = audio_evidence({"ar": 0.92, "fa": 0.03, "hu": 0.02}, CANDIDATES)
    assert verse.primary == "ar" and verse.alternatives == () and verse.clear
    strict = audio_evidence({"ar": 0.92, "fa": 0.03, "hu": 0.02}, CANDIDATES, outsiders=False)
    assert strict.primary == "az" and "ar" not in strict.masses
    # 0.5-0.8: decoded beside the candidate the audio leaves possible, and the better decode wins
    doubtful = audio_evidence({"de": 0.5, "ru": 0.06, "az": 0.03, "tr": 0.08}, CANDIDATES)
    assert doubtful.primary == "de" and doubtful.alternatives == ("az",) and not doubtful.clear
    # measured on Azerbaijani turns: an outside well-heard language at 0.3 (fr) does not count
    assert audio_evidence({"fr": 0.30, "fa": 0.18, "az": 0.04}, CANDIDATES).primary == "az"


def test_turkish_is_never_an_outsider_while_azerbaijani_is_a_candidate():
    ev = audio_evidence({"tr": 0.95, "en": 0.02}, CANDIDATES)
    assert ev.primary == "az" and "tr" not in ev.masses
    assert audio_evidence({"uk": 0.9}, CANDIDATES).primary == "ru"  # a relative, not an outsider
