"""What the cloud platforms' tests share: the zones, and a prod and a dev stack captured once per module."""

from __future__ import annotations

from typing import Any

import pytest

from hastack.testing import Capture, capture

ZONES3 = ["us-east-1a", "us-east-1b", "us-east-1c"]


def prod_and_dev(prod_config: dict[str, Any], dev_config: dict[str, Any], *, prod_stack: str) -> tuple[Any, Any, Any]:
    """The ``prod``, ``dev`` and ``each`` (every test once per stack) fixtures; bind them in the test module:
    ``prod, dev, each = prod_and_dev(PROD, DEV, prod_stack="prod")``."""

    @pytest.fixture(scope="module")
    def prod() -> Capture:
        return capture(prod_config, stack=prod_stack)

    @pytest.fixture(scope="module")
    def dev() -> Capture:
        return capture(dev_config, stack="dev")

    @pytest.fixture(scope="module", params=["prod", "dev"])
    def each(request, prod, dev) -> tuple[dict, Capture]:
        return (prod_config, prod) if request.param == "prod" else (dev_config, dev)

    return prod, dev, each
