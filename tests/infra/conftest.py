"""The synthesized templates, shared by every test module that reads them."""

from __future__ import annotations

import pytest

from tests.infra.templates import Templates


@pytest.fixture(scope="session")
def templates() -> Templates:
    """Every environment's templates, synthesized once with the context ``make infra`` uses.

    Synthesis takes most of a minute (loading the CDK's JavaScript runtime is most of it), so the
    CDK is imported here, where deselected runs never pay for it.
    """
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.app import default_context, selected_environments, service_image
    from infra.stacks.environment import add_stack_set

    app = cdk.App(context=default_context())
    stack_sets = {
        config.name: add_stack_set(app, config, service_image(app))
        for config in selected_environments(None)
    }
    assembly = app.synth()
    return {
        env: {
            part: Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)
            for part, stack in stack_set.by_part().items()
        }
        for env, stack_set in stack_sets.items()
    }
