"""The exceptions cnx raises: one cnx.Error subclass per cnx_status."""


class Error(Exception):
    """A cnx call failed; the message names the file and the cause."""

    status = None  # the cnx_status number, set on each subclass


class InvalidArgumentError(Error, ValueError):
    status = 1


class FileError(Error, OSError):
    """Missing, unreadable, empty, or a directory."""

    status = 2


class WeightsError(Error):
    """A malformed or inconsistent weights file."""

    status = 3


class ImageError(Error):
    """A corrupt or truncated image."""

    status = 4


class UnsupportedError(Error):
    """Well-formed input that cnx does not handle."""

    status = 5


class TooLargeError(Error):
    """Over a size limit (pixels, header bytes)."""

    status = 6


class OutOfMemoryError(Error, MemoryError):
    status = 7


class DeviceError(Error):
    """A CUDA, cuDNN or cuBLAS call failed."""

    status = 9


class NoDeviceError(DeviceError):
    """CUDA was asked for and none is usable."""

    status = 8


class InternalError(Error):
    status = 10


_BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, FileError, WeightsError, ImageError, UnsupportedError,
    TooLargeError, OutOfMemoryError, NoDeviceError, DeviceError, InternalError)}


def error_class(status):
    """The exception class for a cnx_status number (the native module raises it)."""
    return _BY_STATUS.get(status, Error)
