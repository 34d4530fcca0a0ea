"""Render a package label as ZPL (Zebra printers), PNG or PDF. Pure: values in, bytes out.

The barcode is GS1-128: Code 128 starting in subset C with FNC1 in first position, then
AI 00 and the 18-digit SSCC, i.e. `]C1` + `00<sscc>` to a scanner. The PNG and PDF draw the
bars from python-barcode's module pattern, so both carry exactly the same symbol; the ZPL
leaves the bars to the printer (`>;` start C, `>8` FNC1).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from barcode.codex import Gs1_128
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.units import inch, mm
from reportlab.pdfgen import canvas

from orders.codes import sscc_is_valid

# A 4 x 6 inch shipping label; ZPL and PNG at 203 dpi (8 dots/mm), the common Zebra head.
DPI = 203
WIDTH_DOTS, HEIGHT_DOTS = 4 * DPI, 6 * DPI
MODULE_DOTS = 4  # 0.5 mm bars: GS1 asks 0.495 mm to 1.016 mm for SSCC labels
BAR_DOTS = 260  # 32 mm: GS1 logistic labels want at least 31.75 mm
QUIET_MODULES = 10
MARGIN = 40
TEXT_DOTS = WIDTH_DOTS - 2 * MARGIN
ZPL_CHAR_WIDTH = 0.6  # font 0's widest common glyphs, as a share of its height


@dataclass(frozen=True, slots=True)
class Label:
    sscc: str
    order_number: str
    customer: str
    destination: str
    package_no: int = 1
    packages: int = 1

    def __post_init__(self) -> None:
        if not sscc_is_valid(self.sscc):
            raise ValueError(f"{self.sscc!r} is not a valid SSCC")

    @property
    def element_string(self) -> str:
        return f"00{self.sscc}"

    @property
    def human_readable(self) -> str:
        return f"(00) {self.sscc}"

    def lines(self) -> list[tuple[str, int]]:
        """The text above the barcode: (line, size in dots)."""
        dest = textwrap.wrap(self.destination, 40)[:3] or [""]
        return [
            (f"Order {self.order_number}", 48),
            (f"Package {self.package_no} of {self.packages}", 32),
            (self.customer[:45], 36),
            *((line, 32) for line in dest),
        ]


def modules(label: Label) -> str:
    """The symbol as '1' (bar) and '0' (space) modules, quiet zones excluded."""
    return Gs1_128(label.element_string).build()[0]


def fit(size: int, width: Callable[[int], float], room: float) -> int:
    """The largest size up to `size` at which the text is at most `room` wide (a long order
    number or name is made smaller rather than cut off the label's edge)."""
    while size > 12 and width(size) > room:
        size -= 2
    return size


def _zpl_text(text: str) -> str:
    """Field data for `^FH_`: ZPL's command characters and non-ASCII as _XX hex (UTF-8)."""
    out = []
    for ch in text:
        if ch.isascii() and ch.isprintable() and ch not in "^~_":
            out.append(ch)
        else:
            out.extend(f"_{b:02X}" for b in ch.encode())
    return "".join(out)


def zpl(label: Label) -> str:
    """ZPL II for a 4 x 6 inch label at 203 dpi."""
    out = ["^XA", "^CI28", f"^PW{WIDTH_DOTS}", f"^LL{HEIGHT_DOTS}"]
    y = MARGIN
    for text, size in label.lines():
        h = fit(size, lambda s, t=text: len(t) * s * ZPL_CHAR_WIDTH, TEXT_DOTS)
        out.append(f"^FO{MARGIN},{y}^A0N,{h},{h}^FH_^FD{_zpl_text(text)}^FS")
        y += size + 14
    y += 40
    # Start C (>;), FNC1 (>8), then the digits in pairs; the printer adds the check symbol.
    x = MARGIN + QUIET_MODULES * MODULE_DOTS
    out.append(f"^FO{x},{y}^BY{MODULE_DOTS}^BCN,{BAR_DOTS},N,N,N^FD>;>8{label.element_string}^FS")
    y += BAR_DOTS + 20
    out.append(f"^FO{MARGIN},{y}^A0N,40,40^FD{label.human_readable}^FS")
    out.append("^XZ")
    return "\n".join(out) + "\n"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled font: no system fonts needed


def png(label: Label) -> bytes:
    """A 203 dpi PNG of the label, bars aligned to whole pixels so they stay sharp."""
    image = Image.new("L", (WIDTH_DOTS, HEIGHT_DOTS), 255)
    draw = ImageDraw.Draw(image)
    y = MARGIN
    for text, size in label.lines():
        h = fit(size, lambda s, t=text: draw.textlength(t, font=_font(s)), TEXT_DOTS)
        draw.text((MARGIN, y), text, fill=0, font=_font(h))
        y += size + 14
    y += 40
    x0 = MARGIN + QUIET_MODULES * MODULE_DOTS  # a quiet zone of 10 modules inside the margin
    for i, bit in enumerate(modules(label)):
        if bit == "1":
            x = x0 + i * MODULE_DOTS
            draw.rectangle((x, y, x + MODULE_DOTS - 1, y + BAR_DOTS - 1), fill=0)
    y += BAR_DOTS + 20
    draw.text((MARGIN, y), label.human_readable, fill=0, font=_font(40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(DPI, DPI))
    return buffer.getvalue()


def pdf(label: Label) -> bytes:
    """A one-page 4 x 6 inch PDF; the bars are vector rectangles, 0.5 mm a module."""
    buffer = io.BytesIO()
    width, height = 4 * inch, 6 * inch
    c = canvas.Canvas(buffer, pagesize=(width, height), invariant=True)
    c.setTitle(f"Label {label.sscc}")
    margin, y = 0.2 * inch, height - 0.2 * inch
    for text, size in label.lines():
        points = size * 72 / DPI
        y -= points + 4
        font = "Helvetica-Bold" if size >= 48 else "Helvetica"
        room = width - 2 * margin
        fitted = fit(size, lambda s, t=text, f=font: c.stringWidth(t, f, s * 72 / DPI), room)
        c.setFont(font, fitted * 72 / DPI)
        c.drawString(margin, y, text)
    module, bar = 0.5 * mm, 32 * mm
    y -= 0.3 * inch + bar
    x0 = margin + QUIET_MODULES * module
    for i, bit in enumerate(modules(label)):
        if bit == "1":
            c.rect(x0 + i * module, y, module, bar, stroke=0, fill=1)
    c.setFont("Helvetica", 14)
    c.drawString(x0, y - 18, label.human_readable)
    c.showPage()
    c.save()
    return buffer.getvalue()
