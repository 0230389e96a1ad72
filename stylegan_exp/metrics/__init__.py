"""Image-quality metrics (FID, KID, precision/recall, PPL, SWD) of a generator against its training set."""


class MetricError(RuntimeError):
    """A metric that cannot be computed here; the message is one line saying why and what is needed."""
