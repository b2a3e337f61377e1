"""templates: compile-time checks, strict rendering, the sandbox, captured trigger keys."""

from __future__ import annotations

import pytest

from keylane.journeys.templates import RenderError, TemplateCompileError, compile_template

CONTEXT = {"brand": {"id": "acme", "name": "Acme"}, "profile": {"first_name": "Ann"},
           "trigger": {"product_name": "Shoes"}, "journey": "cart"}  # fmt: skip


def test_renders_with_the_four_variables_and_strips_whitespace():
    template = compile_template(
        "  {{ brand.name }}: hi {{ profile.first_name }}, {{ trigger.product_name }}"
        " ({{ journey }}) "
    )
    assert template.render(CONTEXT) == "Acme: hi Ann, Shoes (cart)"
    assert template.trigger_keys == {"product_name"}


def test_trigger_keys_are_collected_from_attributes_and_constant_items():
    template = compile_template("{{ trigger.a }}{{ trigger['b'] }}{% if trigger.c %}x{% endif %}")
    assert template.trigger_keys == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ brand.name ", "syntax error on line 1"),
        ("{% if %}", "syntax error"),
        ("{{ customer.name }}", "unknown variable(s) customer"),
        ("{{ trigger | tojson }}", "'trigger' may only be used as trigger.<property>"),
        ("{{ trigger[brand.id] }}", "'trigger' may only be used"),
        ("   ", "is empty"),
    ],
)
def test_load_time_errors(source, fragment):
    with pytest.raises(TemplateCompileError, match=None) as caught:
        compile_template(source)
    assert fragment in str(caught.value)


def test_a_missing_property_fails_at_render_time_unless_defaulted():
    strict = compile_template("{{ trigger.cart_url }}")
    with pytest.raises(RenderError, match="UndefinedError"):
        strict.render(CONTEXT)
    lenient = compile_template("{{ trigger.cart_url | default('https://shop/cart') }}")
    assert lenient.render(CONTEXT) == "https://shop/cart"


def test_the_sandbox_refuses_internals():
    with pytest.raises(RenderError):
        compile_template("{{ brand.__class__.__mro__ }}").render(CONTEXT)
    with pytest.raises(RenderError, match="ZeroDivisionError"):
        compile_template("{{ 1 // 0 }}").render(CONTEXT)
