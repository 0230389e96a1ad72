"""Names of a run's periodic outputs: by whole kimg as the original (`fakes000120.png`,
`network-snapshot-000120.npz`), and unique within the run at any tick size — a later output within a kimg
that already has one gets `_<images>` appended (`fakes000001_250.png`), so nothing is overwritten."""

from __future__ import annotations


class OutputNames:
    def __init__(self) -> None:
        self._taken: dict[str, int] = {}  # name → the image count it was given for

    def _name(self, prefix: str, nimg: int, suffix: str) -> str:
        name = f"{prefix}{nimg // 1000:06d}{suffix}"
        if self._taken.get(name, nimg) != nimg:
            name = f"{prefix}{nimg // 1000:06d}_{nimg % 1000:03d}{suffix}"
        self._taken[name] = nimg
        return name

    def fakes(self, nimg: int) -> str:
        return self._name("fakes", nimg, ".png")

    def snapshot(self, nimg: int) -> str:
        return self._name("network-snapshot-", nimg, ".npz")
