"""Pure: text made safe to store, log and send, whoever sent it (a client or an upstream)."""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def clean_text(value: Any, max_chars: int | None = None) -> str | None:
    """``value`` as text a database accepts: NUL and lone surrogates replaced, cut to
    ``max_chars``; None stays None, any other type becomes its ``str``."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = "".join(REPLACEMENT if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    return text if max_chars is None else text[:max_chars]
