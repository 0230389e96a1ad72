"""Image aspect ratios: `dataset.aspect` ("width:height") parsed, checked and turned into pixel sizes.

Supported: 1:1 (the default), 1:2 and 1:4 (portrait), 2:1 and 4:1 (landscape). Both sides of every image
and of every network level stay powers of two, so each lower level is an exact 2× box/FIR downscale of the
one above, as for squares, and every network layer but the first generator block and the last
discriminator block is the square network's. Ratios like 3:4 are not supported: one side is not a power of
two, which would need odd-sized levels (a 3-pixel-wide first block) or a padded input.

`resolution` stays the short side: the level count, the schedule's and every per-resolution dict's key are
those of a square of that side, and a 1:2 image at resolution 64 is 64 wide × 128 tall (4 × 8 at the first
level).
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED = ("1:1", "1:2", "2:1", "1:4", "4:1")


class AspectError(ValueError):
    """An aspect ratio this package cannot train; the message is one line naming the supported ones."""


@dataclass(frozen=True)
class Aspect:
    """width:height in lowest terms, the short side 1 (a power of two long side)."""

    width: int = 1
    height: int = 1

    def __str__(self) -> str:
        return f"{self.width}:{self.height}"

    @property
    def square(self) -> bool:
        return self.width == self.height

    def size(self, resolution: int) -> tuple[int, int]:
        """(width, height) in pixels of an image whose short side is `resolution`."""
        return resolution * self.width, resolution * self.height

    def shape(self, resolution: int) -> tuple[int, int]:
        """(height, width): the spatial dims of an NHWC tensor at `resolution`."""
        return resolution * self.height, resolution * self.width

    def describe(self, resolution: int) -> str:
        """'64²' for a square, '64×128' (width × height) otherwise: how logs name a size."""
        width, height = self.size(resolution)
        return f"{width}²" if self.square else f"{width}×{height}"


SQUARE = Aspect()


def parse_aspect(text: str | Aspect, what: str = "dataset.aspect") -> Aspect:
    """'1:2' → Aspect(1, 2); anything unsupported is an AspectError naming `what` and the supported ratios."""
    if isinstance(text, Aspect):
        return text
    parts = str(text).strip().split(":")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        width = height = 0
    aspect = Aspect(width, height)
    if str(aspect) not in SUPPORTED:
        raise AspectError(f"{what}={text} is not supported (supported: {', '.join(SUPPORTED)}; width:height)")
    return aspect


def aspect_tag(text: str) -> str:
    """What a folder name made for an aspect carries: '' for squares (their names stay as they were),
    '-1x2' for 1:2 (the `${aspect_tag:…}` resolver of conf/dataset/synthetic.yaml)."""
    text = str(text).strip()
    return "" if text == "1:1" else "-" + text.replace(":", "x")


def aspect_of(width: int, height: int) -> Aspect | None:
    """The supported aspect of a width × height image, or None."""
    short = min(width, height)
    if short <= 0 or width % short or height % short:
        return None
    aspect = Aspect(width // short, height // short)
    return aspect if str(aspect) in SUPPORTED else None


def short_side(width: int, height: int, aspect: Aspect) -> int | None:
    """The short side of a width × height image when it has `aspect`, else None."""
    resolution = min(width, height)
    return resolution if aspect.size(resolution) == (width, height) else None
