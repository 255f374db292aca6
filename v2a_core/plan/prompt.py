"""Read prompts: words and phrases -> taxonomy categories.

Matching is on whole words after lower-casing, dropping punctuation, folding accents
("café" = "cafe") and plurals ("waves" = "wave"), longest phrase first. Words of any script
are words: one that names nothing ("雨", "дождь") is reported as unmatched, not dropped. Inside a prompt, a clause starting with "no",
"without", "not" or "minus" (up to the next comma) is negative, like the negative prompt.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from v2a_core.plan.taxonomy import (
    BY_NAME,
    CATEGORIES,
    FOOTSTEP_WORDS,
    GROUP_DEFAULTS,
    LAYER_WORDS,
    SURFACE_WORDS,
)

_NEGATORS = {"no", "without", "not", "minus", "except", "non"}
_STOPWORDS = {
    "a", "an", "the", "of", "on", "in", "at", "with", "and", "or", "to", "for", "by", "from", "over", "under",
    "some", "very", "lot", "lots", "sound", "sounds", "noise", "noises", "effect", "effects", "film", "movie",
    "scene", "video", "style", "like", "is", "are", "it", "its", "into", "onto", "while", "heavy", "light",
    "loud", "quiet", "soft", "distant", "close", "big", "small", "little", "many", "few", "s",
    # words that hold a sentence together and name no sound (a prompt written as prose)
    "i", "we", "you", "me", "my", "our", "your", "he", "she", "they", "them", "their", "his", "her",
    "this", "that", "these", "those", "there", "here", "who", "which", "what", "when", "where", "while",
    "then", "than", "but", "so", "as", "if", "also", "too", "just", "only", "maybe", "perhaps", "please",
    "be", "been", "being", "was", "were", "am", "has", "have", "had", "do", "does", "can", "could", "should",
    "would", "will", "want", "need", "make", "add", "use", "give", "get", "something", "anything", "some",
    "any", "all", "more", "most", "less", "much", "really", "slightly", "slowly", "quickly", "through",
    "across", "around", "behind", "between", "up", "down", "out", "off", "about", "after", "before", "during",
    "until", "again", "each", "every", "other", "another", "same", "kind", "sort", "type", "background",
    "foreground", "overall", "throughout", "track", "soundtrack", "audio",
}
_MAX_PHRASE = 4


def _fold(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "is", "us")):
        return word[:-1]
    return word


_CLAUSE_BREAK = re.compile(r"[,;:.!?\n，、。；：！？]+")
"""Punctuation that ends a clause (ASCII and the CJK full-width forms)."""


_ZWJ = "\u200d"


def _is_variation_selector(ch: str) -> bool:
    """U+FE00-FE0F: text or emoji presentation of the character before it; no letter of its own."""
    return "\ufe00" <= ch <= "\ufe0f"


def _words(text: str) -> list[str]:
    """Lower-cased runs of letters, digits and combining marks, in any script; each emoji (a
    symbol with its variation selector, skin tone and zero-width-joined parts) is a word of its
    own."""
    words: list[str] = []
    current: list[str] = []
    emoji = False  # ``current`` is an emoji
    for ch in unicodedata.normalize("NFC", text.lower()):
        kind = unicodedata.category(ch)
        if emoji and (_is_variation_selector(ch) or kind == "Sk" or ch == _ZWJ or (kind == "So" and current[-1] == _ZWJ)):
            current.append(ch)
            continue
        if _is_variation_selector(ch):
            continue  # after a letter or a plain symbol: nothing to keep
        if current and (emoji or kind == "So"):
            words.append("".join(current))
            current = []
        emoji = kind == "So"
        if emoji or kind[0] in "LNM":  # letter, number, mark (Devanagari vowel signs...)
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def _emoji_words(token: str) -> list[str]:
    """The words of an emoji's Unicode names that name a sound on their own ("🔥" FIRE -> fire,
    "🌧️" CLOUD WITH RAIN -> rain, "🐶" DOG FACE -> dog); ``[token]`` when none does, so that the
    emoji itself is named as a word naming nothing."""
    names = " ".join(unicodedata.name(ch, "") for ch in token if unicodedata.category(ch) == "So")
    found = [w for w in (_fold(n) for n in names.lower().split()) if w in _single_words()]
    return list(dict.fromkeys(found)) or [token]


@functools.cache
def _single_words() -> frozenset[str]:
    """Words that select something on their own: one-word phrases, footsteps, layers, groups."""
    return frozenset([k[0] for k in _PHRASES if len(k) == 1] + [*_FOOTSTEPS, *_LAYERS, *_GROUP_DEFAULTS])


def _ascii(word: str) -> str:
    """``word`` without its accents when that leaves plain ASCII ("café" -> "cafe", the ligature
    "ﬁre" -> "fire"); words of other scripts unchanged ("дождь" stays "дождь")."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    return plain if plain.isascii() else word


def tokens(text: str) -> list[str]:
    """Lower-case, folded words of ``text`` (hyphens and punctuation split words; an emoji
    stands for the sound its name says, see :func:`_emoji_words`)."""
    out: list[str] = []
    for w in _words(text):
        if unicodedata.category(w[0]) == "So":
            out.extend(_emoji_words(w))
        elif folded := _fold(_ascii(w)):  # a lone combining accent folds to nothing
            out.append(folded)
    return out


def _phrase_index() -> dict[tuple[str, ...], str]:
    index: dict[tuple[str, ...], str] = {}
    for cat in CATEGORIES:
        for syn in (*cat.synonyms, cat.name):
            key = tuple(tokens(syn))
            if key and key not in index:
                index[key] = cat.name
    return index


_PHRASES = _phrase_index()
_GROUPS: dict[str, tuple[str, ...]] = {}
for _cat in CATEGORIES:
    for _g in _cat.groups:
        for _w in [tokens(_g)]:
            key = " ".join(_w)
            _GROUPS[key] = (*_GROUPS.get(key, ()), _cat.name)
_FOOTSTEPS = {_fold(w) for w in FOOTSTEP_WORDS}
_SURFACES = {_fold(w): c for w, c in SURFACE_WORDS.items()}
_GROUP_DEFAULTS = {_fold(w): c for w, c in GROUP_DEFAULTS.items()}
_LAYERS = {_fold(w): layer for w, layer in LAYER_WORDS.items()}


@dataclass(frozen=True)
class PromptMatch:
    category: str
    text: str
    """The prompt words that selected it."""


@dataclass(frozen=True)
class ParsedPrompt:
    matches: tuple[PromptMatch, ...]
    """Categories asked for, in prompt order, each once."""
    layers: tuple[str, ...]
    """Layers asked for without naming a category ("music", "ambience")."""
    negated: tuple[str, ...]
    """Categories a "no X" / "without X" clause inside the prompt removes."""
    unmatched: tuple[str, ...]
    """Words that selected nothing, or in a "no X" clause removed nothing (stop words left out)."""


def _clauses(text: str) -> list[tuple[list[str], bool]]:
    """(folded words, negative?) for each clause; a negator word negates the rest of its clause."""
    out: list[tuple[list[str], bool]] = []
    for clause in _CLAUSE_BREAK.split(text.lower()):
        words = tokens(clause)
        for i, w in enumerate(words):
            if w in _NEGATORS:
                if words[:i]:
                    out.append((words[:i], False))
                out.append((words[i + 1 :], True))
                break
        else:
            if words:
                out.append((words, False))
    return out


def _match_spans(words: list[str]) -> list[tuple[int, int, str]]:
    """``(start, end, category)`` of the longest-phrase matches in ``words``, left to right."""
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            key = tuple(words[i : i + n])
            if key in _PHRASES:
                spans.append((i, i + n, _PHRASES[key]))
                i += n
                break
        else:
            i += 1
    return spans


def _match_words(words: list[str]) -> tuple[list[PromptMatch], list[str]]:
    """Longest-phrase matches in ``words``; returns matches and the words left over."""
    spans = _match_spans(words)
    matched = {i for a, b, _ in spans for i in range(a, b)}
    return ([PromptMatch(cat, " ".join(words[a:b])) for a, b, cat in spans],
            [w for i, w in enumerate(words) if i not in matched])


def _group_spans(words: list[str]) -> list[tuple[int, int, str]]:
    """``(start, end, phrase)`` of every group phrase in ``words``, longest first (overlapping
    phrases each count)."""
    return [(i, i + n, key) for n in range(min(_MAX_PHRASE, len(words)), 0, -1)
            for i in range(len(words) - n + 1) if (key := " ".join(words[i : i + n])) in _GROUPS]


def _naming_nothing(words: list[str]) -> list[str]:
    """The words of a negative clause that remove nothing: in no category's phrase or group's
    phrase, no footsteps or layer word, no stop word or number."""
    named = {i for a, b, _ in _match_spans(words) for i in range(a, b)}
    named.update(i for a, b, _ in _group_spans(words) for i in range(a, b))
    return [w for i, w in enumerate(words) if i not in named and w not in _FOOTSTEPS and w not in _LAYERS
            and w not in _STOPWORDS and w not in _NEGATORS and not w.isdigit()]


def _footsteps(words: list[str]) -> str:
    for w in words:
        if w in _SURFACES:
            return _SURFACES[w]
    return "footsteps.concrete"


def parse_prompt(text: str) -> ParsedPrompt:
    """Categories, layers and in-prompt negations of a prompt."""
    matches: list[PromptMatch] = []
    layers: list[str] = []
    negated: list[str] = []
    unmatched: list[str] = []
    all_words = tokens(text)
    for words, negative in _clauses(text):
        if negative:
            negated.extend(excluded_by_words(words))
            unmatched.extend(_naming_nothing(words))
            continue
        found, rest = _match_words(words)
        matches.extend(found)
        for w in rest:
            if w in _FOOTSTEPS:
                matches.append(PromptMatch(_footsteps(all_words), w))
            elif w in _LAYERS:
                layers.append(_LAYERS[w])
            elif w in _GROUP_DEFAULTS:
                matches.append(PromptMatch(_GROUP_DEFAULTS[w], w))
            elif w in _SURFACES and any(x in _FOOTSTEPS for x in all_words):
                continue  # the surface of the footsteps
            elif w not in _STOPWORDS and not w.isdigit():
                unmatched.append(w)
    seen: set[str] = set()
    unique = []
    for m in matches:
        if m.category not in seen:
            seen.add(m.category)
            unique.append(m)
    return ParsedPrompt(tuple(unique), tuple(dict.fromkeys(layers)), tuple(dict.fromkeys(negated)), tuple(unmatched))


def excluded_by_words(words: list[str]) -> list[str]:
    """Every category a list of (folded) negative-prompt words removes."""
    out: list[str] = []
    found, rest = _match_words(words)
    out.extend(m.category for m in found)
    for _, _, key in _group_spans(words):
        out.extend(_GROUPS[key])
    for w in rest:
        if w in _FOOTSTEPS:
            out.extend(c.name for c in CATEGORIES if c.layer == "footsteps")
        if w in _LAYERS:
            out.extend(c.name for c in CATEGORIES if c.layer == _LAYERS[w])
    return list(dict.fromkeys(c for c in out if c in BY_NAME))


def excluded_categories(negative_prompt: str) -> tuple[str, ...]:
    """Categories removed by a negative prompt: named ones and whole named groups."""
    out: list[str] = []
    for chunk in _negative_clauses(negative_prompt):
        out.extend(excluded_by_words(chunk))
    return tuple(dict.fromkeys(out))


def negative_words_naming_nothing(negative_prompt: str) -> tuple[str, ...]:
    """The words of a negative prompt that remove nothing: no category or group of the taxonomy
    is called that ("vocals" removes the choir and crowds; "xylophone" is no sound the built-in
    generator makes, so it removes nothing)."""
    out: list[str] = []
    for chunk in _negative_clauses(negative_prompt):
        out.extend(_naming_nothing(chunk))
    return tuple(dict.fromkeys(out))


def _negative_clauses(negative_prompt: str) -> list[list[str]]:
    """The folded words of each clause of a negative prompt, negators left out (phrases never
    span two clauses)."""
    clauses = [[w for w in tokens(clause) if w not in _NEGATORS]
               for clause in _CLAUSE_BREAK.split(negative_prompt.lower())]
    return [c for c in clauses if c]
