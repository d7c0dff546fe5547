"""The error that stops the count: a cost that leaves something out is not a floor."""


class CostError(Exception):
    """The manifests or prices cannot be costed as they are; the message names the object."""
