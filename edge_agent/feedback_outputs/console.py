"""The built-in feedback output: one line per verdict on the terminal, green or red.

Options (`[feedback.options.console]`): `color` = "auto" (when the stream is a terminal),
"always" or "never".
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

from event_contract import Verdict

GREEN = "\x1b[1;32m"
RED = "\x1b[1;31m"
RESET = "\x1b[0m"

ColorMode = Literal["auto", "always", "never"]


class ConsoleOutput:
    def __init__(self, *, color: ColorMode = "auto", stream: TextIO | None = None) -> None:
        if color not in ("auto", "always", "never"):
            raise ValueError(f"color must be 'auto', 'always' or 'never', not {color!r}")
        self.color = color
        # None: whatever sys.stdout is when a verdict arrives (a test may have replaced it).
        self.stream = stream

    def format(self, verdict: Verdict, *, color: bool) -> str:
        word = verdict.verdict.value.upper().replace("_", " ")
        if color:
            word = f"{GREEN if verdict.ok else RED}{word}{RESET}"
        point = verdict.read_point
        where = (point.door or point.station) if point is not None else None
        parts = [f"[{where}]" if where else "", verdict.device, word]
        if verdict.code:
            parts.append(verdict.code)
        refs = [
            f"{k} {v}"
            for k, v in (("order", verdict.order_ref), ("package", verdict.package_ref))
            if v
        ]
        if refs:
            parts.append(f"({', '.join(refs)})")
        if verdict.message:
            parts.append(f"- {verdict.message}")
        if verdict.origin == "gateway":
            parts.append("[local]")
        return " ".join(p for p in parts if p)

    def show(self, verdict: Verdict) -> None:
        stream = self.stream or sys.stdout
        color = self.color == "always" or (self.color == "auto" and stream.isatty())
        print(self.format(verdict, color=color), file=stream, flush=True)


def make_output(options: Mapping[str, Any]) -> ConsoleOutput:
    unknown = sorted(set(options) - {"color"})
    if unknown:
        raise ValueError(
            f"unknown option {', '.join(map(repr, unknown))}; the console output takes 'color'"
        )
    return ConsoleOutput(color=options.get("color", "auto"))
