"""Reading the states out of what a vision-language model answered.

Real answers are numbered lines, "State k:" headings, bullets, markdown, a chatty sentence before or after, a
thinking block, all of it on one line, or plain prose; the count is not always the one asked for. The result
always has the number of states asked for, with notes saying what was padded, cut or replaced.
"""
import re
from dataclasses import dataclass

_THINKING = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_LABEL_WORDS = r"(?:state|step|stage|phase|scene|part)"
# "2. ", "2) ", "(2) ", "2: " or "State 2:" starting a list item; inline ones get a line of their own first.
_NUMBERED = re.compile(rf"^(?:\(?\d{{1,2}}[.):]|{_LABEL_WORDS}\s*\d{{1,2}}\b\s*[:.)\-–—]?)(?=\s|$)\s*", re.I)
_INLINE_ITEM = re.compile(rf"(?<=[.!?;])\s+(?=\(?\d{{1,2}}[.):]\s|{_LABEL_WORDS}\s*\d{{1,2}}\s*[:.)\-–—]\s)", re.I)
_BULLET = re.compile(r"^[-*•·+]\s+")
_HEADING = re.compile(r"^#{1,6}\s*")
_MARKUP = re.compile(r"\*+|`+|__+")
_EMPHASIS = re.compile(r"(\*+|__+)(.+?)\1")
# What comes before a colon: a title ("Initial state: a hand holds ...") or a clause of the state ("The cat rises:
# its back arches"). A title is emphasised, a label ("State 2", "Final stage", "The end"), one word, or up to four
# words in Title Case; anything else is kept.
_TITLE = re.compile(r"^([^.:!?]{1,40}?):\s+(?=\S)")
_ORDINAL = r"(?:initial|first|second|third|fourth|fifth|next|last|final|opening|closing|starting|ending|middle)"
_POSITION = r"(?:beginning|start|middle|end|ending|finish|climax|conclusion|result|outcome|setup|transition)"
_LABEL = re.compile(rf"^(?:the\s+)?(?:{_ORDINAL}(?:\s+(?:{_LABEL_WORDS}|{_POSITION}))?|{_LABEL_WORDS}|{_POSITION})"
                    r"(?:\s*\d{1,2})?$", re.I)
_MINOR_WORDS = {"a", "an", "the", "of", "and", "or", "to", "in", "on", "at", "with", "for", "by"}
_SENTENCE_END = re.compile(r"[.!?]['\")\]]*$")
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
# "Here are the four states: A hand ..." in prose: the part up to the colon is no state. It announces them ("here
# are", "as follows", "four stages", "the states"); a clause merely using such a word ("The cat steps off the mat:")
# is kept.
_COUNT = r"(?:\d{1,2}|two|three|four|five|six|seven|eight|nine|ten|these|those|the following)"
_INTRO = re.compile(rf"^[^:]*(?:\b(?:here|below)(?:['’]s|\s+(?:are|is))|\bthe following\b|\bas follows\b|"
                    rf"\b{_COUNT}\s+(?:\w+\s+)?(?:states|steps|stages|phases)\b|"
                    r"\b(?:the|these)\s+(?:states|stages|phases)\b)[^:]*:\s+", re.I)
_CHATTY = re.compile(r"^(?:sure|certainly|of course|okay|ok|absolutely|great|here (?:are|is)|below (?:are|is)|"
                     r"i hope|hope this|let me know|feel free|i'd be (?:happy|glad)|i would be (?:happy|glad))\b", re.I)


@dataclass
class StateAnswer:
    states: list[str]  # exactly as many as asked for
    found: int         # usable states in the answer
    notes: list[str]   # what was padded, cut or replaced, for the user


def _clean(text: str) -> str:
    return " ".join(_MARKUP.sub("", text).split()).strip(" \"'“”‘’")


def _is_title(text: str, emphasised: set[str]) -> bool:
    words = text.split()
    return text in emphasised or len(words) == 1 or (len(words) <= 4 and (
        bool(_LABEL.match(text)) or all(w[0].isupper() or not w[0].isalpha() for w in words
                                        if w.lower() not in _MINOR_WORDS)))


def _line(line: str) -> tuple[bool, str]:
    """(is a list item, its text without marker, markup or title)."""
    text = _HEADING.sub("", line.strip())
    bullet = _BULLET.match(text)
    raw = text[bullet.end():] if bullet else text
    text = _clean(raw)
    numbered = _NUMBERED.match(text)
    if not (bullet or numbered):
        return False, text
    text = text[numbered.end():] if numbered else text
    title = _TITLE.match(text)
    emphasised = {_clean(m[2]).rstrip(": ") for m in _EMPHASIS.finditer(raw)}  # "**Start**:", "**Start:**"
    return True, _clean(text[title.end():] if title and _is_title(title[1], emphasised) else text)


def _list_items(lines: list[tuple[bool, str]]) -> list[str]:
    """The text of each list item; a line right below an item continues it when the item has no final stop
    (a wrapped line), or replaces it when the item is only a title ("State 1: Gripping")."""
    items, open_item, continued = [], False, False
    for is_item, text in lines:
        if is_item:
            items.append(text)
            open_item, continued = True, False
        elif not text:
            open_item = False
        elif open_item and not _SENTENCE_END.search(items[-1]):
            is_title = not items[-1] or (not continued and len(items[-1].split()) <= 4 and text[0].isupper())
            items[-1] = text if is_title else f"{items[-1]} {text}"
            continued = True
    return items


def _prose_sentences(text: str) -> list[str]:
    sentences = [_INTRO.sub("", _clean(s)) for s in _SENTENCES.split(" ".join(text.split()))]
    return [s for s in sentences if s and not s.endswith((":", "?")) and not _CHATTY.match(s)]


def answer_states(answer: str) -> list[str]:
    """Every usable state in the answer, in order."""
    text = _INLINE_ITEM.sub("\n", _THINKING.sub("", answer))
    lines = [_line(line) for line in text.splitlines()]
    states = _list_items(lines) if any(is_item for is_item, _ in lines) else _prose_sentences(text)
    return [s for s in states if any(c.isalpha() for c in s)]


def fit_states(found: list[str], count: int, instruction: str) -> StateAnswer:
    """Exactly `count` states: extra ones cut, too few stretched over the slots (each repeated, order kept), none
    replaced by the instruction."""
    if not found:
        return StateAnswer([instruction] * count, 0, [
            f"No usable states in the model's answer: the instruction itself is used for all {count} states."])
    if len(found) > count:
        return StateAnswer(found[:count], len(found), [
            f"The model gave {len(found)} states for {count}: the first {count} are used."])
    if len(found) < count:
        stretched = [found[i * len(found) // count] for i in range(count)]
        return StateAnswer(stretched, len(found), [
            f"The model gave {len(found)} state{'s' * (len(found) > 1)} for {count}: each is repeated to fill "
            f"{count} states in order."])
    return StateAnswer(list(found), count, [])


def parse_answer(answer: str, count: int, instruction: str) -> StateAnswer:
    return fit_states(answer_states(answer), count, " ".join(instruction.split()))


def states_text(result: StateAnswer) -> str:
    """Numbered states, one a line, then the notes: what the node hands to the user to read and edit."""
    lines = [f"{i}. {state}" for i, state in enumerate(result.states, 1)]
    return "\n".join(lines + ([""] + [f"Note: {n}" for n in result.notes] if result.notes else []))
