"""Sends: the policy pipeline of a send step at decision time, and the relay's re-check.

At decision time (:func:`plan_send`), in this order; the first failing check skips the send,
records its reason and the run moves on:

1. suppressed: the subscriber opted out (``skipped_suppressed``);
2. the channel's address is missing (``skipped_no_address``);
3. marketing without consent for the channel (``skipped_no_consent``);
4. the template fails (``template_error``);
5. already later than intended + ``max_lateness`` (``skipped_stale``);
6. marketing only: quiet hours defer to the next opening + jitter (``deferred_quiet_hours``),
   or skip when the window never opens (``skipped_quiet_hours``) or the opening is past
   the expiry (``skipped_stale``);
7. marketing only: the frequency caps at the planned time (``skipped_frequency_cap``); a send
   that passes reserves its slot.

At dispatch time (:func:`recheck`) the relay asks again with the subscriber's current state.

Imports the standard library and the domain only.
"""

from __future__ import annotations

import bisect
from datetime import datetime

from keylane.clock import as_utc
from keylane.errors import InvalidArgumentError
from keylane.journeys.decision import (
    SYSTEM_JOURNEY,
    ReasonCode,
    SendIntent,
    Verdict,
)
from keylane.journeys.model import BrandConfig, Channel, Journey, JourneySet, MessageClass, Send
from keylane.journeys.policies import caps, quiet_hours
from keylane.journeys.policies.caps import CapRule
from keylane.journeys.policies.quiet_hours import Window
from keylane.journeys.policies.zones import candidate_zones
from keylane.journeys.state import Pending, Run, SubscriberState
from keylane.journeys.templates import RenderError, Template
from keylane.journeys.work import Work, from_ms, idempotency_key

__all__ = ["MAX_BODY", "cap_rules", "plan_send", "recheck", "send_reply"]

#: The longest rendered body per channel (SMS: ten segments).
MAX_BODY = {Channel.SMS: 1600, Channel.EMAIL: 100_000}
#: The step names of keyword replies.
STOP_CONFIRMATION, START_CONFIRMATION, HELP_REPLY = (
    "stop_confirmation",
    "start_confirmation",
    "help_reply",
)
_FALLBACK = {
    STOP_CONFIRMATION: "You are unsubscribed and will get no more messages.",
    START_CONFIRMATION: "You are subscribed again. Reply HELP for help, STOP to opt out.",
    HELP_REPLY: "Reply STOP to opt out. Msg & data rates may apply.",
}


def _window(channel: Channel, phone_state: str | None, brand: BrandConfig) -> Window:
    if channel is Channel.SMS:
        return quiet_hours.sms_window(phone_state, brand.sms_window)
    return brand.email_window


def cap_rules(channel: Channel, phone_state: str | None, brand: BrandConfig) -> tuple[CapRule, ...]:
    """The cap rules of a marketing send: the brand's for the channel, plus the FL/OK legal cap."""
    if channel is Channel.EMAIL:
        return brand.email_caps
    if phone_state in caps.LEGAL_CAP_STATES:
        return (*brand.sms_caps, caps.LEGAL_RULE)
    return brand.sms_caps


def _blocked(
    opted_out: bool, address: str | None, consent: bool, message_class: MessageClass
) -> ReasonCode | None:
    if opted_out:
        return ReasonCode.SKIPPED_SUPPRESSED
    if address is None:
        return ReasonCode.SKIPPED_NO_ADDRESS
    if message_class is MessageClass.MARKETING and not consent:
        return ReasonCode.SKIPPED_NO_CONSENT
    return None


def _render(w: Work, template: Template, journey: str) -> str:
    context = {
        "brand": {"id": w.state.brand_id, "name": w.brand.name},
        "profile": w.attributes,
        "trigger": w.current_trigger,
        "journey": journey,
    }
    return template.render(context)


def plan_send(w: Work, journey: Journey, run: Run, step: Send, intended_ms: int) -> None:
    """Run a send step's checks and, if they pass, add the intent (and reserve its cap slot)."""
    sms = step.channel is Channel.SMS
    address = w.phone if sms else w.email
    code = _blocked(
        w.opted_out, address, w.sms_consent if sms else w.email_consent, step.message_class
    )
    if code is not None:
        w.reason(code, journey.name, step.id)
        return
    assert address is not None
    w.current_trigger = run.trigger
    try:
        body = _render(w, step.template, journey.name)
        subject = _render(w, step.subject, journey.name) if step.subject else None
    except RenderError as exc:
        w.reason(ReasonCode.TEMPLATE_ERROR, journey.name, step.id, str(exc))
        return
    if not body or len(body) > MAX_BODY[step.channel]:
        w.reason(
            ReasonCode.TEMPLATE_ERROR,
            journey.name,
            step.id,
            f"rendered body has {len(body)} characters (1-{MAX_BODY[step.channel]})",
        )
        return
    expires_ms = intended_ms + journey.max_lateness_ms
    if w.now_ms > expires_ms:
        w.reason(ReasonCode.SKIPPED_STALE, journey.name, step.id, "reached after max_lateness")
        return
    planned_ms, code = w.now_ms, ReasonCode.SENT
    if step.message_class is MessageClass.MARKETING:
        zones = candidate_zones(w.timezone, w.phone_zones, w.brand.timezones)
        window = _window(step.channel, w.phone_state, w.brand)
        at = quiet_hours.defer(zones, window, w.now, w.state.key, w.brand.jitter_s)
        if at is None:
            w.reason(
                ReasonCode.SKIPPED_QUIET_HOURS,
                journey.name,
                step.id,
                f"window {window} never open in all of {', '.join(zones)}",
            )
            return
        if at != w.now:
            planned_ms, code = int(at.timestamp() * 1000), ReasonCode.DEFERRED_QUIET_HOURS
        if planned_ms > expires_ms:
            w.reason(
                ReasonCode.SKIPPED_STALE,
                journey.name,
                step.id,
                f"quiet hours until {at.isoformat()}, after max_lateness",
            )
            return
        sent = w.sms_sends if sms else w.email_sends
        sent = caps.prune(sent, w.now_ms, w.journeys.cap_horizon_ms)
        rules = cap_rules(step.channel, w.phone_state, w.brand)
        if not caps.allows(sent, planned_ms, rules):
            w.reason(
                ReasonCode.SKIPPED_FREQUENCY_CAP,
                journey.name,
                step.id,
                ", ".join(str(rule) for rule in rules),
            )
            return
        if sms:
            w.sms_sends = caps.reserve(sent, planned_ms)
        else:
            w.email_sends = caps.reserve(sent, planned_ms)
    key = idempotency_key(
        w.state.brand_id, w.state.subscriber_id, journey.name, run.run_id, step.id, run.seq
    )
    _emit(
        w,
        key,
        step.channel,
        address,
        journey.name,
        run.run_id,
        step.id,
        body,
        subject,
        step.message_class,
        planned_ms,
        expires_ms,
    )
    bisect.insort(
        w.pending,
        Pending(key, journey.name, run.run_id, step.channel.value, expires_ms),
        key=lambda p: p.expires_ms,
    )
    w.reason(code, journey.name, step.id)


def _zone(w: Work) -> str | None:
    if w.timezone:
        return w.timezone
    return w.phone_zones[0] if len(w.phone_zones) == 1 else None


def _emit(
    w: Work,
    key: str,
    channel: Channel,
    to: str,
    journey: str,
    run_id: str,
    step: str,
    body: str,
    subject: str | None,
    message_class: MessageClass,
    planned_ms: int,
    expires_ms: int | None,
) -> None:
    w.sends.append(
        SendIntent(
            idempotency_key=key,
            channel=channel,
            to=to,
            brand_id=w.state.brand_id,
            subscriber_id=w.state.subscriber_id,
            journey=journey,
            run_id=run_id,
            step=step,
            body=body,
            subject=subject,
            message_class=message_class,
            not_before=w.now if planned_ms == w.now_ms else from_ms(planned_ms),
            expires_at=None if expires_ms is None else from_ms(expires_ms),
            subscriber_timezone=_zone(w),
        )
    )


def send_reply(w: Work, step: str, template: Template) -> None:
    """Send a keyword reply (transactional SMS, exempt from quiet hours and caps)."""
    if w.phone is None:
        w.reason(ReasonCode.SKIPPED_NO_ADDRESS, SYSTEM_JOURNEY, step)
        return
    w.current_trigger = {}
    try:
        body = _render(w, template, SYSTEM_JOURNEY) or _FALLBACK[step]
    except RenderError as exc:
        w.reason(ReasonCode.TEMPLATE_ERROR, SYSTEM_JOURNEY, step, f"{exc}; sent the fallback")
        body = _FALLBACK[step]
    key = idempotency_key(
        w.state.brand_id, w.state.subscriber_id, SYSTEM_JOURNEY, w.run_id, step, 0
    )
    _emit(
        w,
        key,
        Channel.SMS,
        w.phone,
        SYSTEM_JOURNEY,
        w.run_id,
        step,
        body[: MAX_BODY[Channel.SMS]],
        None,
        MessageClass.TRANSACTIONAL,
        w.now_ms,
        None,
    )
    w.reason(ReasonCode.SENT, SYSTEM_JOURNEY, step)


def recheck(
    state: SubscriberState, intent: SendIntent, now: datetime, journeys: JourneySet
) -> Verdict:
    """The relay's last gate before the provider: SEND, DEFER(until) or SKIP(reason).

    Checks, with the subscriber's current state: the opt-out (only the STOP confirmation itself
    still goes), that the send is still pending (a goal, STOP or restart cancels it), the
    address and consent, staleness, and for marketing the quiet hours at ``now``. Caps are not
    re-counted: the decision that created the send reserved its slot.

    Raises:
        InvalidArgumentError: ``intent`` is for another subscriber, or ``now`` is naive.
    """
    now = as_utc(now, "now")
    if (intent.brand_id, intent.subscriber_id) != (state.brand_id, state.subscriber_id):
        raise InvalidArgumentError(
            f"intent: is for {intent.brand_id}:{intent.subscriber_id}, not {state.key}"
        )
    if intent.journey == SYSTEM_JOURNEY:
        if intent.step == STOP_CONFIRMATION or not state.opted_out:
            return Verdict.send()
        return Verdict.skip(ReasonCode.SKIPPED_SUPPRESSED)
    if state.opted_out:
        return Verdict.skip(ReasonCode.SKIPPED_SUPPRESSED)
    if not any(p.idempotency_key == intent.idempotency_key for p in state.pending):
        return Verdict.skip(ReasonCode.SKIPPED_CANCELLED)
    sms = intent.channel is Channel.SMS
    address = state.phone if sms else state.email
    code = _blocked(
        False, address, state.sms_consent if sms else state.email_consent, intent.message_class
    )
    if code is not None:
        return Verdict.skip(code)
    if address != intent.to:
        return Verdict.skip(ReasonCode.SKIPPED_NO_CONSENT)
    if intent.expires_at is not None and now > intent.expires_at:
        return Verdict.skip(ReasonCode.SKIPPED_STALE)
    if now < intent.not_before:
        return Verdict.defer(intent.not_before, ReasonCode.SEND_NOT_DUE)
    if intent.message_class is MessageClass.TRANSACTIONAL:
        return Verdict.send()
    brand = journeys.brand(state.brand_id)
    zones = candidate_zones(state.timezone, state.phone_zones, brand.timezones)
    window = _window(intent.channel, state.phone_state, brand)
    at = quiet_hours.defer(zones, window, now, state.key, brand.jitter_s)
    if at is None:
        return Verdict.skip(ReasonCode.SKIPPED_QUIET_HOURS)
    if at == now:
        return Verdict.send()
    if intent.expires_at is not None and at > intent.expires_at:
        return Verdict.skip(ReasonCode.SKIPPED_STALE)
    return Verdict.defer(at)
