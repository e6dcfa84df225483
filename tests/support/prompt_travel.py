"""How the prompt-travel nodes read a schedule string, as their code does it (the tests parse ours the same way)."""
import json
import re


def fizznodes_parse(text: str) -> dict[int, str]:
    """FizzNodes BatchPromptSchedule: the text inside braces as JSON, a trailing comma trimmed first."""
    text = text.strip()
    if text.endswith(","):
        text = text[:-1]
    return {int(k): v for k, v in json.loads("{" + text + "}").items()}


def animatediff_evolved_parse(text: str) -> dict[int, str]:
    """AnimateDiff-Evolved prompt scheduling: its regex over the text, no unescaping."""
    return {int(k): v for k, v in re.findall(r'"([\d:\-\.]+)\s*"\s*:\s*"([^"]*)"', text)}
