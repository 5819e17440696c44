"""docs/configuration.md is generated from the models and must match them."""

from pathlib import Path

from hastack.docs import generate


def test_configuration_reference_is_current():
    path = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert path.read_text() == generate(), "docs/configuration.md is stale: run `make docs`"
