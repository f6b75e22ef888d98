"""Field descriptions for --help (config/reference): defaults and the comments of schema.py."""

from __future__ import annotations

from dataclasses import fields

import pytest

from lightning_extremal.config import BenchmarkConfig, RunConfig, describe_fields, field_comments


@pytest.mark.parametrize(
    "schema",
    [BenchmarkConfig, *(f.default_factory for f in fields(RunConfig) if f.name != "output_dir")],
)
def test_every_field_has_a_comment(schema):
    described = describe_fields(schema)
    assert [key for key, _, _ in described] == [f.name for f in fields(schema)]
    assert all(comment for _, _, comment in described), described


def test_comments_defaults_continuations_and_section_headings():
    from lightning_extremal.config import MethodConfig

    method = dict((k, (d, c)) for k, d, c in describe_fields(MethodConfig, "method."))
    assert method["method.sigma"] == ("21.0", "mask smoothing σ, px: reference value")
    assert method["method.areas"][0] == "[0.1]"
    assert method["method.area_margin"][0] == "null"
    assert method["method.jitter"][0] == "true"
    comments = field_comments(MethodConfig)
    # A comment that leaves a parenthesis open goes on over the next line.
    assert comments["lambda0"].endswith("before the reward has placed them)")
    # A block above a field without its own comment is that field's comment...
    assert comments["lambda_final"].startswith("λ at the last step")
    # ...and a "--- heading ---" line is nobody's.
    assert "---" not in comments["warm_start_layer"] and "---" not in comments["kind"]
