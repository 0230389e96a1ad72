"""Image-quality metrics (FID, SWD) for a generator against its training set."""


class MetricError(RuntimeError):
    """A metric that cannot be computed here; the message is one line saying why and what is needed."""
