"""What the run service refuses, by kind. Each transport maps a kind to its own answer: the
HTTP routes to a status code (app.HTTP_STATUS), the WebSocket to a close code
(stream.py); the service itself knows neither."""

from __future__ import annotations


class Refusal(Exception):
    """A request the run service refuses; `message` says why, for a person."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds after which trying again may work


class Conflict(Refusal):
    """The run's state does not allow this (e.g. step while running)."""


class Busy(Refusal):
    """A limit is reached: the server is full, a client holds too many runs, a run gets
    control requests too fast."""


class TooManyViewers(Busy):
    """The run already has as many viewers as it may."""


class Invalid(Refusal):
    """A value the request may hold by the schema that this run cannot take now (a pace too
    slow to finish in the server's time): `loc` is the field's path, `value` what was given."""

    def __init__(self, message: str, loc: tuple[str, ...], value: object) -> None:
        super().__init__(message)
        self.loc, self.value = loc, value


class ShuttingDown(Refusal):
    """The server is stopping and takes no new runs."""


class Unavailable(Refusal):
    """Something the server needs does not answer now (Redis, in Redis mode)."""
