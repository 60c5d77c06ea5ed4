"""Names from data or paths (dataset, class and file names) made safe to put in Markdown or
HTML that the report renders: a folder named `<img onerror=...>` must stay text."""

from __future__ import annotations


def escape(text) -> str:
    """str(text) with every character but letters, digits and spaces as a numeric character
    reference (`<` -> `&#60;`). Those read back as the same characters in HTML and in
    Markdown alike, and neither starts a tag nor Markdown syntax (`*`, `_`, `|`, `[`, `` ` ``).
    Not for code spans or DataFrames (pandas escapes its own HTML)."""
    return "".join(c if c.isalnum() or c == " " else f"&#{ord(c)};" for c in str(text))
