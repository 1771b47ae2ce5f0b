"""semat's exceptions: one class per kind of semat::Error in the C++ library (semat/core/error.h),
with the same one-line messages. The extension raises these; ``except semat.Error`` catches all.
"""


class Error(RuntimeError):
    """Base of every error semat raises (C++ ``semat::Error``)."""


class ConfigError(Error, ValueError):
    """Bad configuration or arguments not tied to one input value (an unknown option, a model
    stage without its checkpoint...)."""


class IoError(Error, OSError):
    """A file that cannot be read, decoded or written."""


class DataError(Error, ValueError):
    """Input that is well-formed but unusable (an empty mask, a trimap without unknowns...)."""


class CheckpointError(Error):
    """Checkpoint format, version, key or shape problems."""


class InvalidArgument(Error, ValueError):
    """A bad value given to an API: a box outside the image, an array of the wrong shape or
    dtype..."""


class StateError(Error):
    """An API used in the wrong order (predict before set_image...)."""


__all__ = ["Error", "ConfigError", "IoError", "DataError", "CheckpointError", "InvalidArgument",
           "StateError"]
