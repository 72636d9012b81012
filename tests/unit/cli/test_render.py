"""How query values are shown: a float is never rounded in a table."""

from __future__ import annotations

import math

import numpy as np

from brickyard.cli.render import format_value


def test_every_float_shown_reads_back_as_the_same_float() -> None:
    rng = np.random.default_rng(7)
    values = [*rng.standard_normal(2000) * 10.0 ** rng.integers(-12, 20, 2000), 12345678901.5, 499978.123456, 1e300, -0.0]
    for value in values:
        assert float(format_value(float(value))) == value


def test_special_values_and_nulls_are_named() -> None:
    assert format_value(None) == "[dim]NULL[/dim]"
    assert math.isnan(float(format_value(float("nan"))))
    assert format_value(float("inf")) == "inf"
    assert format_value(0.1 + 0.2) == "0.30000000000000004"
