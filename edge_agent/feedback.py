"""Dock feedback: verdicts on scans, from the broker or from the gateway itself, to outputs.

The agent subscribes to `feedback_topic(site, gateway)` and hands each payload to
`DockFeedback.on_message`; scans a scanner source refused locally (a bad check digit) come
in through `on_reject` and become a verdict at once, without a round trip.

Outputs plug in by registration: a module `edge_agent/feedback_outputs/<name>.py` with a
`make_output(options)` function, and `<name>` in the gateway's `[feedback] outputs`. The
console output is built in; a stack light or a buzzer is another module.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from event_contract import Verdict, VerdictKind

from . import feedback_outputs
from .config import GatewayConfigError
from .sources.scanner import Rejection

log = logging.getLogger(__name__)

MAX_LOGGED_PAYLOAD = 200

# What each kind of local rejection (edge_agent/sources/gs1.py) tells the dock.
LOCAL_VERDICTS: dict[str, VerdictKind] = {"bad_check_digit": VerdictKind.BAD_CHECK_DIGIT}


COUNTERS = ("received", "local", "shown", "malformed", "output_errors")


class FeedbackOutput(Protocol):
    """Shows verdicts at the dock. `show` runs on the event loop: it must not block."""

    def show(self, verdict: Verdict) -> None: ...


class OutputFactory(Protocol):
    def __call__(self, options: Mapping[str, Any]) -> FeedbackOutput: ...


class FeedbackOutputError(GatewayConfigError):
    """An output that cannot be built; the message names it and what to fix."""


def known_outputs() -> list[str]:
    """The names usable in `[feedback] outputs`: the modules in edge_agent/feedback_outputs/."""
    return sorted(m.name for m in pkgutil.iter_modules(feedback_outputs.__path__))


def make_output(name: str, options: Mapping[str, Any] | None = None) -> FeedbackOutput:
    known = known_outputs()
    if name not in known:
        raise FeedbackOutputError(
            f"unknown feedback output {name!r}; available: {', '.join(known)}"
        )
    module = importlib.import_module(f"{feedback_outputs.__name__}.{name}")
    factory: OutputFactory | None = getattr(module, "make_output", None)
    if factory is None:
        raise FeedbackOutputError(
            f"feedback output {name!r}: {module.__name__} has no make_output(options) function"
        )
    return factory(options or {})


def local_verdict(rejection: Rejection) -> Verdict:
    """The verdict for a scan the gateway refused before it became an event."""
    return Verdict(
        device=rejection.device,
        read_point=rejection.read_point,
        verdict=LOCAL_VERDICTS.get(rejection.result.kind, VerdictKind.INVALID_CODE),
        message=rejection.reason[:500],
        code=rejection.result.code[:256] or None,
        decided_at=rejection.at,
        origin="gateway",
    )


class DockFeedback:
    """Verdicts in (MQTT payloads or local rejections), every configured output shows them.

    A malformed payload or a failing output is counted and logged, never raised: feedback
    is for people at the dock, and must not stop the agent from reading.
    """

    def __init__(self, *, gateway: str, outputs: Sequence[FeedbackOutput]) -> None:
        self.gateway = gateway
        self.outputs = list(outputs)
        self.stats: Counter[str] = Counter()
        self.last: Verdict | None = None

    @classmethod
    def from_config(
        cls, *, gateway: str, names: Sequence[str], options: Mapping[str, Mapping[str, Any]]
    ) -> DockFeedback:
        outputs = []
        for name in names:
            try:
                outputs.append(make_output(name, options.get(name)))
            except (TypeError, ValueError) as err:
                raise FeedbackOutputError(
                    f"gateway {gateway}: feedback output {name!r}: {err}; "
                    f"check [feedback.options.{name}]"
                ) from None
        return cls(gateway=gateway, outputs=outputs)

    def counters(self) -> dict[str, int]:
        # Fixed keys, zeros included, so a dashboard sees the same fields from every gateway.
        return {f"feedback_{k}": self.stats[k] for k in COUNTERS}

    def on_message(self, payload: bytes) -> None:
        try:
            verdict = Verdict.model_validate_json(payload)
        except ValidationError as err:
            self.stats["malformed"] += 1
            first = err.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            log.warning(
                "gateway %s: ignored a malformed verdict (%s: %s): %r",
                self.gateway,
                where,
                first["msg"],
                payload[:MAX_LOGGED_PAYLOAD],
            )
            return
        self.stats["received"] += 1
        self.show(verdict)

    def on_reject(self, rejection: Rejection) -> None:
        self.stats["local"] += 1
        self.show(local_verdict(rejection))

    def show(self, verdict: Verdict) -> None:
        self.last = verdict
        self.stats["shown"] += 1
        for output in self.outputs:
            try:
                output.show(verdict)
            except Exception:
                # One broken stack light must not silence the console (or the agent).
                self.stats["output_errors"] += 1
                log.exception("gateway %s: feedback output %r failed", self.gateway, output)
