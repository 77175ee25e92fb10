"""Language data the consistency checks read: negation, number words, key terms, case endings.

Small closed lists on purpose: each entry is a word an analyst would check by hand, and each
list is measured on the samples (README, "Translation"). Russian words are matched through
their dictionary form (pymorphy3), Azerbaijani words as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# --- negation ---------------------------------------------------------------------------------

RU_NEGATION = frozenset({"не", "нет", "ни", "нельзя", "нечего", "некого", "негде", "некуда", "незачем"})
# ни- pronouns and adverbs (никто, ничего, никогда, нигде, ...): the ни- prefix on a question word
RU_NI_WORD = re.compile(r"^ни(?:кто|кого|кому|кем|ком|что|чего|чему|чем|чт|где|куда|откуда|когда|как|какой|какая|"
                        r"какое|какие|каких|каким|какого|какому|сколько|чей|чья|чьё|чье|чьи)$")
AZ_NEGATION = frozenset({"deyil", "deyiləm", "deyilsən", "deyilik", "deyilsiniz", "deyillər", "deyildir", "deyildi",
                         "deyildim", "deyildik", "yox", "yoxdur", "yoxdu", "yoxdir", "heç"})
# Azerbaijani negative verb forms: a stem, the negative -ma/-mə, then past -dı, aorist -z, future
# or participle -y..., evidential -mış, conditional -sa; present -mır/-mir/-mur/-mür.
AZ_NEGATIVE_VERB = re.compile(r"^\w{2,}?(?:(?:ma|mə)(?:d[ıiuü]|z|y[ıiuüaə]|m[ıiuü]ş|s[aə])|m[ıiuü]r)\w*$")
EN_NEGATION = frozenset({"not", "no", "never", "none", "nothing", "nobody", "noone", "neither", "nor", "nowhere",
                         "cannot"})

# --- numbers ----------------------------------------------------------------------------------

RU_NUMBERS = {
    "ноль": 0, "два": 2, "две": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6, "семь": 7, "восемь": 8,
    "девять": 9, "десять": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13, "четырнадцать": 14,
    "пятнадцать": 15, "шестнадцать": 16, "семнадцать": 17, "восемнадцать": 18, "девятнадцать": 19,
    "двадцать": 20, "тридцать": 30, "сорок": 40, "пятьдесят": 50, "шестьдесят": 60, "семьдесят": 70,
    "восемьдесят": 80, "девяносто": 90, "сто": 100, "двести": 200, "триста": 300, "четыреста": 400,
    "пятьсот": 500, "тысяча": 1000, "миллион": 1_000_000, "полтора": 1.5, "двое": 2, "трое": 3, "четверо": 4,
    "пятеро": 5, "шестеро": 6,
}
AZ_NUMBERS = {
    "sıfır": 0, "iki": 2, "üç": 3, "dörd": 4, "beş": 5, "altı": 6, "yeddi": 7, "səkkiz": 8, "doqquz": 9,
    "on": 10, "iyirmi": 20, "otuz": 30, "qırx": 40, "əlli": 50, "altmış": 60, "yetmiş": 70, "səksən": 80,
    "doxsan": 90, "yüz": 100, "min": 1000, "milyon": 1_000_000,
}
EN_NUMBERS = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "dozen": 12,
}
# Months count as numbers: a date that loses its month is a date that did not survive. English months
# count only capitalised ("may", "march" are verbs too); Azerbaijani by word beginning.
RU_MONTHS = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь", "ноябрь",
             "декабрь")  # dictionary forms
AZ_MONTHS = ("yanvar", "fevral", "mart", "aprel", "may", "iyun", "iyul", "avqust", "sentyabr", "oktyabr", "noyabr",
             "dekabr")
EN_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
             "november", "december")

# --- key terms --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A key term: how it starts in the source languages, and the English words that render it."""

    sources: tuple[str, ...]  # lower-case word beginnings, Russian and Azerbaijani
    english: tuple[str, ...]  # lower-case word beginnings in English

    @property
    def label(self) -> str:
        return f"{self.sources[0]}… ({self.english[0]}…)"


# The vocabulary of confessions and propaganda where a wrong English word changes the claim:
# religious labels that justify violence, acts of violence, the group's names, its money.
KEY_TERMS: tuple[Term, ...] = (
    Term(("многобожник", "многобожие", "müşrik", "şirk"), ("polythe", "idolat", "pagan", "heathen", "mushrik",
                                                            "shirk")),
    Term(("отступник", "вероотступни", "муртад", "mürtəd", "dindən dön"), ("apostat", "renegade", "murtad",
                                                                          "defector")),
    Term(("неверн", "кафир", "kafir", "kafər", "kafir"), ("infidel", "unbeliev", "disbeliev", "kafir", "kuffar",
                                                          "faithless", "non-believ", "nonbeliev", "heretic")),
    Term(("такфир", "təkfir"), ("takfir", "excommunicat", "apostat")),
    Term(("закят", "зякят", "zəkat", "zakat"), ("zakat", "alms", "tithe", "charity", "religious tax")),
    Term(("джихад", "cihad"), ("jihad", "holy war")),
    Term(("шахид", "şəhid"), ("martyr", "shahid", "shaheed")),
    Term(("халифат", "xilafət"), ("caliphate", "khilafa")),
    Term(("шариат", "şəriət"), ("sharia", "shariah", "islamic law")),
    Term(("моджахед", "муджахид", "mücahid"), ("mujahid", "mujahed", "mujahideen", "holy warrior")),
    Term(("амир", "эмир", "əmir"), ("emir", "amir", "commander")),
    Term(("исламское государство", "исламского государства", "исламскому государству", "исламским государством",
          "игил", "даиш", "işid", "islam dövlət", "i̇slam dövlət"), ("islamic state", "isis", "isil", "daesh")),
    Term(("убить", "убил", "убив", "убий", "убей", "убит", "убью", "убьют", "казн", "öldür", "qətl"),
         ("kill", "murder", "slay", "slain", "execut", "assassin")),
    Term(("воева", "воюе", "войн", "сражал", "сражат", "döyüş", "müharib", "vuruş"), ("fight", "fought", "war",
                                                                                   "battle", "combat")),
    Term(("оружи", "silah"), ("weapon", "arms", "gun", "rifle")),
    Term(("взрыв", "partlay", "partlat"), ("explo", "blast", "bomb", "blew", "blow")),
    Term(("заложни", "girov"), ("hostage",)),
    Term(("пытк", "пытал", "işgəncə"), ("tortur",)),
)


def load_glossary(path: str | Path) -> tuple[Term, ...]:
    """A user's glossary: one term per line, `source forms<TAB>English forms`, each side a list
    separated by `|` (word beginnings, case-insensitive); `#` starts a comment.

        Багдади|Baghdadi	Baghdadi
        закят|zəkat	zakat|alms
    """
    terms = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split("\t") if "\t" in line else line.split(None, 1)
        sources = tuple(s.strip().lower() for s in parts[0].split("|") if s.strip())
        english = tuple(s.strip().lower() for s in parts[1].split("|") if s.strip()) if len(parts) > 1 else ()
        if not sources or not english:
            raise ValueError(f"glossary {path}, line {number}: expected 'source forms<TAB>English forms'")
        terms.append(Term(sources, english))
    return tuple(terms)


# --- names ------------------------------------------------------------------------------------

# Case endings cut before a name is transliterated and compared: "Ракку" -> "Ракк" ~ "Raqqa",
# "Rəqqədə" -> "Rəqqə". Longest first.
RU_ENDINGS = ("ами", "ями", "ого", "его", "ому", "ему", "ыми", "ими", "ой", "ей", "ом", "ем", "ам", "ям", "ах", "ях",
              "ов", "ев", "ую", "юю", "ая", "яя", "ое", "ее", "ые", "ие", "ых", "их", "ым", "им", "а", "я", "у", "ю",
              "е", "ы", "и", "о")
AZ_ENDINGS = ("ların", "lərin", "lara", "lərə", "larda", "lərdə", "dan", "dən", "tan", "tən", "nın", "nin", "nun",
              "nün", "lar", "lər", "da", "də", "ta", "tə", "ın", "in", "un", "ün", "ya", "yə", "yı", "yi", "a", "ə",
              "ı", "i", "u", "ü")
# Capitalised English words that are not names of anything in the source.
EN_NOT_NAMES = frozenset({"i", "i'm", "i've", "i'll", "i'd", "mr", "mrs", "ms", "ok", "god", "allah", "lord"})
RU_NOT_NAMES = frozenset({"вы", "вас", "вам", "вами", "ваш", "ваша", "ваше", "ваши", "вашего", "вашей", "вашим",
                          "ваших", "бог", "бога", "богу", "господь", "аллах", "аллаха"})
