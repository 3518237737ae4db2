"""The synthesized templates, shared by every test module that reads them."""

from __future__ import annotations

import pytest

from tests.infra.templates import Templates, synthesize


@pytest.fixture(scope="session")
def templates() -> Templates:
    """Every environment's templates as ``make infra`` synthesizes them, once per session."""
    from infra.app import selected_environments

    return synthesize(selected_environments(None))
