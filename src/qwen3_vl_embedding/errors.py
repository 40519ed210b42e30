"""Exceptions raised by qwen3_vl_embedding."""
from __future__ import annotations


class Qwen3VLError(Exception):
    """Base class of this package's errors."""


class InputError(Qwen3VLError, ValueError):
    """An input item cannot be embedded or scored.

    `index` is the item's position in the caller's list (None when it is not known),
    `field` names the part of the item (for example ``"image"`` or ``"video[1]"``) and
    `cause` says what went wrong.
    """

    def __init__(self, cause: str, *, index: int | None = None, field: str | None = None):
        self.cause = cause
        self.index = index
        self.field = field
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"input {self.index}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.cause}" if where else self.cause

    def located(self, index: int | None = None, field_prefix: str | None = None) -> "InputError":
        """A copy of this error placed at `index`, its field prefixed by `field_prefix`."""
        field = self.field
        if field_prefix:
            field = f"{field_prefix}.{field}" if field else field_prefix
        err = type(self)(self.cause, index=self.index if index is None else index, field=field)
        err.__cause__ = self.__cause__
        return err

    def __reduce__(self):
        return (_rebuild_input_error, (type(self), self.cause, self.index, self.field))


def _rebuild_input_error(cls, cause, index, field):
    return cls(cause, index=index, field=field)


class MediaError(InputError):
    """An image or video could not be fetched, read or decoded."""


class MediaPolicyError(InputError):
    """A media reference was refused by the media policy (local file outside the allowed folder, remote URL, limits)."""


class LimitError(MediaPolicyError):
    """A media item exceeds a configured limit (bytes, pixels, frames, duration)."""

    def __init__(self, cause: str, *, limit: str | None = None, value: object = None,
                 index: int | None = None, field: str | None = None):
        self.limit = limit
        self.value = value
        super().__init__(cause, index=index, field=field)

    def located(self, index: int | None = None, field_prefix: str | None = None) -> "LimitError":
        err = super().located(index, field_prefix)
        err.limit, err.value = self.limit, self.value
        return err


class ModelNotFoundError(Qwen3VLError, OSError):
    """A model could be neither found locally nor downloaded.

    `folder`: where the instructions of the message download it; the message ends by saying how to pass
    it (`for_option` says it for a command-line option instead of the Python argument)."""

    def __init__(self, message: str, *, folder: str | None = None):
        self.body = message
        self.folder = folder
        super().__init__(message + (f"\n  then pass the folder: model_name_or_path='{folder}'" if folder else ""))

    def for_option(self, option: str, env: str | None = None) -> "ModelNotFoundError":
        """The same error, telling a command-line user which option (or environment variable) takes the folder."""
        if not self.folder:
            return self
        how = f"{option} {self.folder}" + (f" (or set {env}={self.folder})" if env else "")
        err = ModelNotFoundError(self.body)
        err.args = (f"{self.body}\n  then pass the folder: {how}",)
        err.folder = self.folder
        return err

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.body

    def __reduce__(self):
        return (_rebuild_model_not_found, (self.body, self.folder, str(self)))


def _rebuild_model_not_found(body, folder, message):
    err = ModelNotFoundError(body, folder=folder)
    err.args = (message,)
    return err
