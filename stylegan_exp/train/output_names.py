"""Names of a run's periodic outputs: by whole kimg as the original (`fakes000120.png`,
`network-snapshot-000120.npz`), and unique within the run at any tick size — a later output within a kimg
that already has one gets `_<images>` appended (`fakes000001_250.png`), so nothing is overwritten.

A resumed run continues its run's names: the plain names its earlier run directories hold are taken. The
outputs of an interrupted tick (a stop signal, max_minutes) always carry `_<images>` and take no plain name,
so that the run's names after a resume are the uninterrupted run's."""

from __future__ import annotations

from collections.abc import Iterable

_UNKNOWN = -1  # a name an earlier run directory holds: taken, for an image count we do not know


class OutputNames:
    def __init__(self, earlier: Iterable[str] = ()) -> None:
        self._taken: dict[str, int] = dict.fromkeys(earlier, _UNKNOWN)  # name → the image count it was for

    def _name(self, prefix: str, nimg: int, suffix: str, interrupted: bool) -> str:
        plain = f"{prefix}{nimg // 1000:06d}{suffix}"
        if not interrupted and self._taken.get(plain, nimg) == nimg:
            self._taken[plain] = nimg
            return plain
        return f"{prefix}{nimg // 1000:06d}_{nimg % 1000:03d}{suffix}"

    def fakes(self, nimg: int, interrupted: bool = False) -> str:
        return self._name("fakes", nimg, ".png", interrupted)

    def snapshot(self, nimg: int, interrupted: bool = False) -> str:
        return self._name("network-snapshot-", nimg, ".npz", interrupted)

