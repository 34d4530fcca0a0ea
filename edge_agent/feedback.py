"""Dock feedback: verdicts on scans, from the broker or from the gateway itself, to outputs.

The agent subscribes to `feedback_topic(site, gateway)` and hands each payload to
`DockFeedback.on_message`; scans a scanner source refused locally (a bad check digit) come
in through `on_reject` and become a verdict at once, without a round trip.

Outputs plug in by registration: a module `edge_agent/feedback_outputs/<name>.py` with a
`make_output(options)` function, and `<name>` in the gateway's `[feedback] outputs`. The
console output is built in; a stack light or a buzzer is another module.

Unknown verdict kinds are refusals: a newer server may send a kind this gateway does not know
yet (`order_cancelled` to a gateway older than it). Such a verdict is not dropped: it is shown
as `UNKNOWN_KIND_SHOWN_AS`, a refusal every output already knows, with the server's kind in
front of the server's message. Only the `verdict` value is tolerated; anything else wrong
with a payload still makes it malformed (counted, logged, dropped). See
docs/event-contract.md, "Verdicts the gateway does not know".
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import re
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
MAX_UNKNOWN_KINDS_LOGGED = 32

# What each kind of local rejection (identifiers/gs1.py) tells the dock.
LOCAL_VERDICTS: dict[str, VerdictKind] = {"bad_check_digit": VerdictKind.BAD_CHECK_DIGIT}


# A verdict kind this gateway does not know is shown as this refusal (see the module docstring).
UNKNOWN_KIND_SHOWN_AS = VerdictKind.WRONG_ORDER
# What an unknown kind may look like to be taken for one: VerdictKind's own spelling. Any
# other `verdict` value (a number, null, a long or odd string) is malformed.
_KIND_SPELLING = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

COUNTERS = ("received", "local", "shown", "malformed", "unknown_kind", "output_errors")


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


def _unknown_kind(payload: bytes, err: ValidationError) -> str | None:
    """The payload's `verdict` value, if that value is the only thing wrong with it and it is
    spelled like a verdict kind: a kind from a newer server. None otherwise."""
    problems = err.errors(include_url=False)
    if not all(p["loc"] == ("verdict",) and p["type"] == "enum" for p in problems):
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    kind = data.get("verdict") if isinstance(data, dict) else None
    if not isinstance(kind, str) or not _KIND_SPELLING.match(kind):
        return None
    return kind


def parse_verdict(payload: bytes) -> tuple[Verdict, str | None]:
    """A verdict from the broker, tolerant of a verdict kind this gateway does not know.

    Returns the verdict and, when its kind was unknown, that kind: the verdict is then a
    refusal (`UNKNOWN_KIND_SHOWN_AS`) whose message starts with the server's kind. Raises
    ValidationError for anything else that does not fit the contract.
    """
    try:
        return Verdict.model_validate_json(payload), None
    except ValidationError as err:
        kind = _unknown_kind(payload, err)
        if kind is None:
            raise
    data = json.loads(payload)
    message = data.get("message") or "(no message; this gateway does not know the verdict)"
    data["verdict"] = UNKNOWN_KIND_SHOWN_AS.value
    data["message"] = f"{kind}: {message}"[:500]
    # Validated as JSON again, so every other field is held to exactly the same rules.
    return Verdict.model_validate_json(json.dumps(data)), kind


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
        self._unknown_kinds_logged: set[str] = set()

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
            verdict, unknown_kind = parse_verdict(payload)
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
        if unknown_kind is not None:
            self.stats["unknown_kind"] += 1
            # Once per kind (it will repeat), for a bounded number of kinds.
            logged = self._unknown_kinds_logged
            if unknown_kind not in logged and len(logged) < MAX_UNKNOWN_KINDS_LOGGED:
                logged.add(unknown_kind)
                log.warning(
                    "gateway %s: verdict kind %r is unknown to this gateway (a newer server?); "
                    "shown as a refusal (%s) with the server's message; update the gateway",
                    self.gateway,
                    unknown_kind,
                    UNKNOWN_KIND_SHOWN_AS.value,
                )
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
