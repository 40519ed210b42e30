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
    """A model could be neither found locally nor downloaded."""
