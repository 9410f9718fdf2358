"""Plain-text tables for the terminal (one number format for every table), and LaTeX escaping."""

from __future__ import annotations

import unicodedata
from collections import defaultdict


def fmt(value, digits: int = 3) -> str:
    """The one number format: fixed decimals, '-' for missing, 'inf' for infinities."""
    if value is None:
        return "-"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def text_table(header, rows) -> str:
    rows = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def accuracy_table(rows) -> str:
    """Adversarial RCA per model / threat model / attack (rows) and epsilon (columns), averaged over seeds."""
    eps = sorted({r["epsilon"] for r in rows})
    cells = defaultdict(list)
    for r in rows:
        label = r["attack"] + (f" <- {r['substitute']}" if r["substitute"] else "")
        cells[(r["model"], r["threat_model"], label, r["epsilon"])].append(r["adv_rca"])
    keys = sorted({k[:3] for k in cells}, key=lambda k: (k[0], _THREAT_ORDER.get(k[1], 9), k[2]))
    body = [[*k, *(sum(cells[(*k, e)]) / len(cells[(*k, e)]) if cells.get((*k, e)) else None for e in eps)]
            for k in keys]
    return text_table(["model", "threat", "attack"] + [f"eps={e:g}" for e in eps], body)


_THREAT_ORDER = {"white_box": 0, "gray_box": 1, "black_box": 2, "control": 3}


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "|": r"\textbar{}", "ε": r"$\varepsilon$", "∞": r"$\infty$", "µ": r"\textmu{}", "→": r"$\rightarrow$",
        "×": r"$\times$", "±": r"$\pm$", "·": r"$\cdot$",
        "–": "--", "←": r"$\leftarrow$", "≥": r"$\geq$", "≤": r"$\leq$", "\n": " "}


def tex_escape(text) -> str:
    """Escape LaTeX's special characters; other non-ASCII characters are transliterated or dropped."""
    out = []
    for ch in str(text).replace("->", "→"):
        if ch in _TEX:
            out.append(_TEX[ch])
        else:
            out.append(ch if ord(ch) < 128 else unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode())
    return "".join(out)
