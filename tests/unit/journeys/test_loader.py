"""loader: the shipped file loads; every file error names the file, journey, step and field."""

from __future__ import annotations

from importlib import resources

import pytest

from keylane.journeys import EventType, JourneyFileError, load_journeys, parse_journeys
from keylane.journeys.loader import duration_ms
from keylane.journeys.model import Branch, Channel, MessageClass, Send, Wait, WaitFor
from keylane.journeys.policies.caps import CapRule
from keylane.journeys.policies.quiet_hours import Window

MINIMAL = """
version = 1

[journeys.cart]
goal = ["order_placed"]

[[journeys.cart.steps]]
id = "added"
kind = "trigger"
event = "added_to_cart"

[[journeys.cart.steps]]
id = "wait"
kind = "wait_for"
event = "order_placed"
timeout = "30m"
on_timeout = "sms"

[[journeys.cart.steps]]
id = "sms"
kind = "send"
channel = "sms"
template = "Come back for {{ trigger.product_name | default('it') }}"
"""


def parse(text: str):
    return parse_journeys(text, source="test.toml")


def test_the_shipped_file_loads_with_the_four_journeys(journeys):
    assert list(journeys.journeys) == [
        "welcome",
        "browse_abandonment",
        "cart_abandonment",
        "post_purchase",
    ]
    cart = journeys.journeys["cart_abandonment"]
    assert cart.goals == {EventType.ORDER_PLACED}
    assert cart.max_lateness_ms == 12 * 3_600_000
    first_wait = cart.steps["wait_for_order"]
    assert isinstance(first_wait, WaitFor)
    assert first_wait.timeout_ms == 30 * 60_000
    second_wait = cart.steps["wait_for_order_again"]
    assert isinstance(second_wait, WaitFor)
    assert second_wait.timeout_ms == 24 * 3_600_000
    email = cart.steps["cart_email"]
    assert isinstance(email, Send)
    assert email.channel is Channel.EMAIL
    post = journeys.journeys["post_purchase"]
    wait = post.steps["wait_an_hour"]
    assert isinstance(wait, Wait)
    assert wait.duration_ms == 3_600_000
    assert post.restart
    assert post.min_interval_ms == 0
    welcome_sms = journeys.journeys["welcome"].steps["welcome_sms"]
    assert isinstance(welcome_sms, Send)
    assert welcome_sms.message_class is MessageClass.TRANSACTIONAL
    brand = journeys.default_brand
    assert brand.sms_caps == (CapRule(2, 86_400_000), CapRule(5, 7 * 86_400_000))
    assert brand.sms_window == Window(480, 1260)


def test_the_default_file_is_package_data():
    # Found through importlib.resources, as an installed wheel serves it.
    resource = resources.files("keylane.journeys").joinpath("default.toml")
    assert resource.is_file()
    assert "[journeys.cart_abandonment]" in resource.read_text()


def test_a_minimal_file_gets_the_documented_defaults():
    journeys = parse(MINIMAL)
    cart = journeys.journeys["cart"]
    assert cart.min_interval_ms == 86_400_000
    assert not cart.restart
    assert cart.max_lateness_ms == 12 * 3_600_000
    assert cart.trigger_keys == ("product_name",)
    sms = cart.steps["sms"]
    assert isinstance(sms, Send)
    assert sms.next == "exit"
    assert sms.message_class is MessageClass.MARKETING
    brand = journeys.brand("anyone")
    assert brand.timezones == ("America/New_York",)
    assert brand.jitter_s == 1800
    assert brand.email_caps == (CapRule(3, 86_400_000), CapRule(10, 7 * 86_400_000))


def test_brand_tables_override_the_defaults():
    text = MINIMAL.replace(
        "version = 1",
        'version = 1\n[brand]\nname = "Base"\n[brands.eu]\ntimezone = ["Europe/Paris"]\n'
        '[brands.eu.caps]\nsms = [{ limit = 1, window = "24h" }]\n',
    )
    journeys = parse(text)
    assert journeys.brand("eu").timezones == ("Europe/Paris",)
    assert journeys.brand("eu").name == "Base"
    assert journeys.brand("eu").sms_caps == (CapRule(1, 86_400_000),)
    assert journeys.brand("us").sms_caps[0] == CapRule(2, 86_400_000)


def test_branch_conditions_compile():
    text = MINIMAL.replace(
        'on_timeout = "sms"',
        'on_timeout = "vip"\n\n[[journeys.cart.steps]]\nid = "vip"\nkind = "branch"\n'
        'if = { "trigger.total" = { gte = 100 }, "state.sms_ok" = true }\nthen = "sms"\n'
        'else = "exit"',
    )
    branch = parse(text).journeys["cart"].steps["vip"]
    assert isinstance(branch, Branch)
    assert [(c.source, c.key, c.op, c.value) for c in branch.condition] == [
        ("trigger", "total", "gte", 100),
        ("state", "sms_ok", "eq", True),
    ]


def replace(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new)


BAD = [
    ("version = 1", "version = 2", None, None, "version", "not supported"),
    ("version = 1", "version = 1\n[[oops", None, None, None, "not valid TOML"),
    ("version = 1", "version = 1\ncolour = 1", None, None, "colour", "unknown field"),
    ('goal = ["order_placed"]', 'goal = ["order_shipped"]', "cart", None, "goal",
     "unknown event type 'order_shipped'"),
    ('goal = ["order_placed"]', 'goal = ["added_to_cart"]', "cart", None, "goal",
     "cannot also be a goal"),
    ('goal = ["order_placed"]', 'max_lateness = "soon"', "cart", None, "max_lateness",
     "expected a duration"),
    ('goal = ["order_placed"]', 'reentry = { while_active = "queue" }', "cart", None,
     "reentry.while_active", "invalid enum value"),
    ('event = "added_to_cart"', 'event = "timer_fired"', "cart", "added", "event",
     "engine's own event"),
    ('event = "added_to_cart"', 'event = "cart_added"', "cart", "added", "event",
     "unknown event type 'cart_added'"),
    ('kind = "trigger"', 'kind = "start"', "cart", "added", "kind", "invalid value 'start'"),
    ('timeout = "30m"', 'timeout = "0s"', "cart", "wait", "timeout", "at least"),
    ('timeout = "30m"', "", "cart", "wait", "timeout", "is required"),
    ('on_timeout = "sms"', 'on_timeout = "email"', "cart", "wait", "on_timeout",
     "unknown step 'email'"),
    ('on_timeout = "sms"', 'on_timeout = "added"', "cart", "wait", "on_timeout",
     "cannot go back to the trigger"),
    ('on_timeout = "sms"', 'on_timeout = "exit"', "cart", "sms", None, "never reached"),
    ('id = "wait"', 'id = "added"', "cart", "added", "id", "defined twice"),
    ('id = "sms"', 'id = "Send SMS"', "cart", "Send SMS", "id", "lower case"),
    ('channel = "sms"', 'channel = "fax"', "cart", "sms", "channel", "invalid enum value"),
    ('channel = "sms"', 'channel = "sms"\nsubject = "Hi"', "cart", "sms", "subject",
     "an SMS has no subject"),
    ('channel = "sms"', 'channel = "sms"\nclass = "promo"', "cart", "sms", "class",
     "invalid enum value"),
    ("{{ trigger.product_name | default('it') }}", "{{ trigger.product_name", "cart", "sms",
     "template", "syntax error"),
    ("{{ trigger.product_name | default('it') }}", "{{ shopper.name }}", "cart", "sms",
     "template", "unknown variable(s) shopper"),
    ('kind = "trigger"\nevent = "added_to_cart"',
     'kind = "trigger"\nevent = "added_to_cart"\nwhere = { price = { near = 3 } }', "cart",
     "added", "where", "unknown operator 'near'"),
    ('kind = "trigger"\nevent = "added_to_cart"',
     'kind = "trigger"\nevent = "added_to_cart"\nwhere = { sku = { in = "abc" } }', "cart",
     "added", "where", "must be a list"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "journey", "step", "field", "fragment"), BAD)
def test_every_error_names_where(old, new, journey, step, field, fragment):
    with pytest.raises(JourneyFileError) as caught:
        parse(replace(old, new))
    error = caught.value
    message = str(error)
    assert message.startswith("test.toml: ")
    assert (error.journey, error.step, error.field) == (journey, step, field)
    if journey:
        assert f"journey {journey!r}" in message
    if step:
        assert f"step {step!r}" in message
    assert fragment in message


def test_a_loop_without_a_wait_is_rejected():
    text = replace(
        'template = "Come back',
        'next = "again"\ntemplate = "Come back',
    ) + '\n[[journeys.cart.steps]]\nid = "again"\nkind = "branch"\nif = { "state.orders" = 0 }\n' \
        'then = "sms"\nelse = "exit"\n'  # fmt: skip
    with pytest.raises(JourneyFileError, match="loops without a wait: sms -> again -> sms"):
        parse(text)


def test_first_step_must_be_the_only_trigger():
    text = replace('kind = "trigger"\nevent = "added_to_cart"', 'kind = "exit"')
    with pytest.raises(JourneyFileError, match="exactly one trigger step, and it comes first"):
        parse(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("version = 1\n", "defines no journeys"),
        ('version = 1\n[brand]\ntimezone = "Mars/Base"\n[journeys.x]\n', "unknown time zone"),
        ('version = 1\n[brand]\nsms_window = { open = "21:00", close = "08:00" }\n',
         "after it closes"),
        ('version = 1\n[brand.caps]\nsms = [{ limit = 0, window = "24h" }]\n', "must be 1-64"),
        # a limit the state could never enforce (it keeps the last 64 send times per channel)
        ('version = 1\n[brand.caps]\nsms = [{ limit = 65, window = "7d" }]\n', "must be 1-64"),
        ('version = 1\n[brand.caps]\nsms = [{ limit = 2, window = "90d" }]\n', "at most 30d"),
        ('version = 1\n[brand]\nstop_reply = "{{ nope }}"\n', "unknown variable(s) nope"),
        ('version = 1\n[brands."a:b"]\n', "not a valid brand id"),
        ("version = 1\n[journeys.Cart]\n", "a journey name must be lower case"),
        ("version = 1\n[journeys.cart]\n", "has no steps"),
    ],
)  # fmt: skip
def test_file_level_errors(text, fragment):
    with pytest.raises(JourneyFileError, match=None) as caught:
        parse(text)
    assert fragment in str(caught.value)


def test_load_journeys_reads_a_path_and_reports_unreadable_files(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL)
    assert "cart" in load_journeys(path)
    with pytest.raises(JourneyFileError, match=r"missing.toml: cannot be read"):
        load_journeys(tmp_path / "missing.toml")
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(JourneyFileError, match="is not UTF-8"):
        load_journeys(path)


@pytest.mark.parametrize(
    ("text", "ms"), [("90s", 90_000), ("1h30m", 5_400_000), ("7d", 604_800_000), ("0s", 0)]
)
def test_durations(text, ms):
    assert duration_ms(text, minimum_ms=0) == ms


@pytest.mark.parametrize("text", ["", "1w", "1.5h", "h", "400d"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match=r"duration|at most"):
        duration_ms(text)
