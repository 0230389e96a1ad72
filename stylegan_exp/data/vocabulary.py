"""Whether a label space continues another: a conditional model is trained, resumed, measured and sampled on
one vocabulary."""

from __future__ import annotations

from stylegan_exp.data.dataset_format import DatasetError, LabelSpace


def same_vocabulary(saved: LabelSpace | None, labels: LabelSpace | None, where: str) -> None:
    """`labels` must name what `saved` (what `where` was trained on) names, in its order; a one-line
    DatasetError otherwise. Nothing to compare when either is None."""
    if saved is None or labels is None or saved.names == labels.names:
        return
    extra = [n for n in labels.names if n not in saved.names]
    gone = [n for n in saved.names if n not in labels.names]
    detail = "; ".join(p for p in (f"new {', '.join(extra)}" if extra else "",
                                   f"missing {', '.join(gone)}" if gone else "") if p) or "another order"
    raise DatasetError(f"{where} was trained on {saved.dim} labels and this dataset has {labels.dim} "
                       f"({detail}): a conditional model continues on the vocabulary it was trained with")
