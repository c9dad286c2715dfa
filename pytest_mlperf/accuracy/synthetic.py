"""Deterministic synthetic text for the speed benchmark and the equivalence proofs.

Nothing here is used to score a run. The generators exist so that the benchmark
(``scripts/bench_rouge.py``) and the tests compare our recipe against the reference path on
the same reproducible inputs without shipping any real data set: the same ``seed`` always
gives the same texts, on any machine and Python version (only :class:`random.Random` is used,
whose sequence for a given seed is stable).

- :func:`news_pairs`: prediction/reference pairs shaped like CNN/DailyMail summaries
  (references about 3-4 sentences / 50 words, often one highlight per line; predictions
  about 4-6 sentences / 90 words sharing some of the reference's words).
- :func:`varied_texts`: texts built to stress a sentence splitter: abbreviations, initials,
  decimals, quotes, ellipses, lines of punctuation only, blank lines, unicode.
"""

from __future__ import annotations

import random

_WORDS = (
    "the a an of to in and for on with at by from as that this it its was were is are be been "
    "has have had will would could should may said says told after before over under about "
    "into during while when where who which than more most least many some other new old "
    "first last year years day days week weeks month people police officials government "
    "president minister company market report city state country world school family man "
    "woman children court case attack fire team game season player coach fans money plan "
    "deal price prices rate rates million billion percent study researchers health hospital "
    "doctors patients water weather storm flood rain vote election party leader leaders war "
    "troops military security law judge jury trial prison sentence charges investigation "
    "video photos social media statement spokesman spokeswoman according local national "
    "international officers victims suspect suspects crash car driver road flight airport "
    "passengers crew ship river bridge building house home found killed injured died arrested "
    "announced released revealed warned claimed denied agreed refused launched opened closed "
    "won lost scored signed joined left moved running running stopped started continuing "
    "generally happily quickly reportedly allegedly nationally internationally relational "
    "conditional hopefulness goodness effective effectiveness sensibility adjustable "
    "irritant replacement dependent adoption homologous communism activate angularity "
    "homologou formaliti sensitiviti feudalism decisiveness hopeful callousness formalize"
).split()

_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Obama Trump "
    "Clinton Merkel Putin Cameron Messi Ronaldo Federer Serena Beckham Jackson Taylor Lee "
    "Walker Harris Clark Lewis Robinson Young Allen King Wright Scott Green Baker Adams "
    "Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Torres Parker Collins"
).split()

_PLACES = (
    "London Paris Washington Texas California Florida Syria Iraq Iran China Japan Russia "
    "Ukraine Mexico Brazil Germany France Spain Italy Australia Canada India Pakistan Egypt "
    "Libya Nigeria Kenya Afghanistan Chicago Boston Manchester Liverpool Madrid Barcelona"
).split()

_ABBREVIATIONS = (
    "Mr. Mrs. Ms. Dr. Prof. Gen. Sen. Rep. Gov. Lt. Col. St. Jr. Sr. Inc. Corp. Co. Ltd. "
    "U.S. U.K. U.N. E.U. D.C. L.A. N.Y. Jan. Feb. Aug. Sept. Oct. Nov. Dec. No. vs. etc. "
    "e.g. i.e. a.m. p.m. approx. Ave. Mt. Ft. Ph.D. Calif. Fla. Mich."
).split()

_QUOTES = ('"', "'", "\u201c", "\u201d", "\u2018", "\u2019", "``", "''")
_ENDINGS = (".", ".", ".", ".", ".", "?", "!", "...", ".\"", "!\"", "?'", ". ", " .", "\u2026")
_PUNCT_LINES = ("...", "!!!", "?", "-", "--", "* * *", ". . .", "!?", "\u2026", ".", "'.'", "(.)")
_UNICODE = (
    "caf\u00e9", "na\u00efve", "M\u00fcller", "Pe\u00f1a", "\u00c9lodie", "S\u00e3o Paulo",
    "\u4e2d\u6587", "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439",
    "\u03a3\u039f\u03a6\u0399\u0391", "\u0130stanbul", "\U0001f600", "\u2014", "\u00b0C",
    "\u20ac5", "\u00bd", "\u212a", "\ufb01nance",
)


def _number(rng: random.Random) -> str:
    kind = rng.randrange(9)
    if kind == 0:
        return str(rng.randrange(2, 100))
    if kind == 1:
        return f"{rng.randrange(1, 99)}.{rng.randrange(0, 99)}"
    if kind == 2:
        return f"${rng.randrange(1, 999)}.{rng.randrange(1, 9)} million"
    if kind == 3:
        return f"{rng.randrange(1, 100)}%"
    if kind == 4:
        return str(rng.randrange(1950, 2030))
    if kind == 5:
        return f"{rng.randrange(1, 999)},{rng.randrange(100, 999)}"
    if kind == 6:
        return f"{rng.randrange(1, 12)}:{rng.randrange(10, 59)} {rng.choice(('a.m.', 'p.m.'))}"
    if kind == 7:
        return f"No. {rng.randrange(1, 20)}"
    return f"{rng.randrange(1, 31)}th"


def _sentence(rng: random.Random, n_words: int, topic: list[str], topic_share: float) -> str:
    words: list[str] = []
    for _ in range(n_words):
        roll = rng.random()
        if roll < topic_share:
            words.append(rng.choice(topic))
        elif roll < topic_share + 0.06:
            words.append(_number(rng))
        elif roll < topic_share + 0.10:
            words.append(rng.choice(_NAMES))
        elif roll < topic_share + 0.13:
            words.append(rng.choice(_PLACES))
        elif roll < topic_share + 0.15:
            words.append(rng.choice(_ABBREVIATIONS) + " " + rng.choice(_NAMES))
        else:
            words.append(rng.choice(_WORDS))
    if rng.random() < 0.15:
        cut = rng.randrange(1, max(2, len(words)))
        words[cut - 1] += ","
        words.insert(cut, f'"{rng.choice(_WORDS)} {rng.choice(_WORDS)},"')
    text = " ".join(words)
    return text[:1].upper() + text[1:] + rng.choice(_ENDINGS[:6])


def _topic(rng: random.Random) -> list[str]:
    return (
        rng.sample(_NAMES, 3) + rng.sample(_PLACES, 2) + rng.sample(_WORDS, 10)
        + [_number(rng), rng.choice(_ABBREVIATIONS) + " " + rng.choice(_NAMES)]
    )


def _summary(rng: random.Random, topic: list[str], sentences: int, words: int,
             share: float) -> list[str]:
    per = max(3, words // sentences)
    return [_sentence(rng, max(3, per + rng.randrange(-4, 5)), topic, share)
            for _ in range(sentences)]


def news_pairs(n: int, seed: int = 2024) -> tuple[list[str], list[str]]:
    """``n`` (predictions, references) shaped like model summaries and CNN highlights."""
    rng = random.Random(seed)
    predictions: list[str] = []
    references: list[str] = []
    for _ in range(n):
        topic = _topic(rng)
        ref_sents = _summary(rng, topic, rng.randrange(3, 5), 50, 0.35)
        # CNN/DailyMail highlights come one per line, some ending in " ." or no period.
        if rng.random() < 0.6:
            references.append("\n".join(s.rstrip(".") + rng.choice((" .", ".", ""))
                                        for s in ref_sents))
        else:
            references.append(" ".join(ref_sents))
        pred_sents = _summary(rng, topic, rng.randrange(4, 7), 90, 0.3)
        if rng.random() < 0.5:
            # Models often copy a highlight nearly verbatim.
            pred_sents[rng.randrange(len(pred_sents))] = rng.choice(ref_sents)
        sep = rng.choice((" ", " ", " ", "\n", "\n\n", "  "))
        prediction = sep.join(pred_sents)
        if rng.random() < 0.05:
            prediction = " " + prediction + rng.choice(("\n", " ", "\n\nSummary:", ""))
        predictions.append(prediction)
    return predictions, references


def _fragment(rng: random.Random) -> str:
    kind = rng.randrange(14)
    if kind == 0:
        return rng.choice(_PUNCT_LINES)
    if kind == 1:
        return rng.choice(_UNICODE)
    if kind == 2:
        q1, q2 = rng.choice((('"', '"'), ("\u201c", "\u201d"), ("'", "'"), ("``", "''")))
        return f"{q1}{_sentence(rng, rng.randrange(2, 9), list(_NAMES), 0.2)}{q2}"
    if kind == 3:
        return f"{rng.choice('ABCDEFGHJKLMNPRSTW')}. {rng.choice('ABCDEFGHJKLMNPRSTW')}. " \
               f"{rng.choice(_NAMES)}"
    if kind == 4:
        return f"{rng.randrange(1, 10)}."
    if kind == 5:
        return f"({_sentence(rng, rng.randrange(2, 6), list(_WORDS), 0.0)})"
    if kind == 6:
        return rng.choice(("www.cnn.com", "e-mail: a.b@c.org", "3.14159", "v2.0", "Fig. 3",
                           "p. 12", "pp. 4-5", "U.S.-led", "Oct. 3, 2014", "No.1"))
    if kind == 7:
        return rng.choice(_ENDINGS) * rng.randrange(1, 3)
    if kind == 8:
        return "\n" * rng.randrange(1, 3)
    if kind == 9:
        return rng.choice(_ABBREVIATIONS)
    if kind == 10:
        return rng.choice(("- ", "* ", "\u2022 ", "1) ", "a. ", "i. ")) + \
               _sentence(rng, rng.randrange(2, 8), list(_PLACES), 0.2)
    return _sentence(rng, rng.randrange(1, 16), list(_NAMES + _PLACES), 0.15)


def varied_texts(n: int, seed: int = 7) -> list[str]:
    """``n`` texts mixing news sentences with every pattern a sentence splitter trips on."""
    rng = random.Random(seed)
    texts: list[str] = []
    for i in range(n):
        if i % 3 == 0:
            preds, refs = news_pairs(1, seed=rng.randrange(1 << 30))
            texts.append(rng.choice((preds[0], refs[0])))
            continue
        pieces = [_fragment(rng) for _ in range(rng.randrange(1, 12))]
        joiners = (" ", " ", " ", "\n", "", "  ", "\n\n", "\t")
        text = pieces[0]
        for piece in pieces[1:]:
            text += rng.choice(joiners) + piece
        if rng.random() < 0.1:
            text = rng.choice(("", " ", "\n", "  \n ")) + text + rng.choice(("", " ", "\n"))
        texts.append(text)
    return texts
