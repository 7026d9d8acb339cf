"""Slack's message markup as the text a person reads, which is what the ranker was trained on.

Slack sends a message's ``text`` in its own markup (Web API and Events API alike, and in
workspace exports): ``&``, ``<`` and ``>`` that people typed arrive as ``&amp;``, ``&lt;``
and ``&gt;``, so every ``<…>`` is markup: user mentions ``<@U123>`` (``<@U123|name>``),
channels ``<#C123|general>``, special mentions ``<!here>``, ``<!subteam^S123|@team>``,
dates ``<!date^1392734382^{date}|Feb 18, 2014>`` and links ``<https://…|label>``. Emojis
people type arrive as ``:short_name:`` codes (``:tada:``, ``:thumbsup::skin-tone-3:``).

:func:`plain_text` gives the text as the tweets the model learned from read: a mention as
``@name`` (the tokenizer's ``<user>``), a link as the words it shows (its address when it
shows none), the characters people typed, and each code of a catalog emoji as the emoji
itself (whose name the tokenizer reads, as for an emoji typed on any other platform). A
workspace's custom emojis (``:partyparrot:``) stay as they are.
"""

from __future__ import annotations

import re

_ANGLE = re.compile(r"<([^<>]*)>")
_BROADCASTS = ("here", "channel", "everyone")


def _angle(m: re.Match) -> str:
    target, _, label = m.group(1).partition("|")
    if target.startswith("@"):  # <@U123> or <@U123|name>
        return "@" + (label or target[1:])
    if target.startswith("#"):  # <#C123|general>; a private channel may come without a name
        return "#" + (label or "channel")
    if target.startswith("!"):  # <!here>, <!subteam^S123|@team>, <!date^…|fallback>
        command = target[1:].split("^", 1)[0]
        return "@" + command if command in _BROADCASTS else label
    return label or target  # a link: what the reader sees


def plain_text(text: str, catalog=None) -> str:
    """``text`` (Slack markup) as a person reads it; with a ``catalog``
    (:class:`models.catalog.EmojiCatalog`), its emoji codes as the emojis."""
    if "<" in text:
        text = _ANGLE.sub(_angle, text)
    if "&" in text:  # after the markup: a typed "&lt;" arrives as "&amp;lt;"
        text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    if catalog is not None and ":" in text:
        parts, last = [], 0
        for start, end, emoji in catalog.find(text):
            if text[start] == ":":  # a :code: (Unicode emojis stay as they are)
                parts += (text[last:start], emoji.char)
                last = end
        text = "".join(parts) + text[last:] if parts else text
    return text


__all__ = ["plain_text"]
