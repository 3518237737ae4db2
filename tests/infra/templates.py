"""Reading the synthesized templates: resources by type, containers, and what each role may do.

The ``templates`` fixture (``conftest.py``) synthesizes every environment once per session; these
helpers read its ``Template`` objects as plain JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from infra.storage import S3_ACCESS, Access

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

    from infra.environments import EnvironmentConfig

Templates = dict[str, dict[str, "Template"]]
# A bucket's ARN or name arrives from the data stack as an import named after its construct.
_IMPORTED_BUCKET = re.compile(r"ExportsOutput(?:Ref|FnGetAtt)(\w+?)Bucket[0-9A-F]{8}")


def synthesize(configs: Iterable[EnvironmentConfig]) -> Templates:
    """The templates of each environment, by name and part, with the context ``make infra`` uses.

    Synthesis takes most of a minute (loading the CDK's JavaScript runtime is most of it), so the
    CDK is imported here, where deselected runs never pay for it.
    """
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.app import default_context, service_image
    from infra.stacks.environment import add_stack_set

    app = cdk.App(context=default_context())
    stack_sets = {config.name: add_stack_set(app, config, service_image(app)) for config in configs}
    assembly = app.synth()
    return {
        env: {
            part: Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)
            for part, stack in stack_set.by_part().items()
        }
        for env, stack_set in stack_sets.items()
    }


def exported_subnet_tiers(network: Template) -> dict[str, str]:
    """Export name → subnet group ("edge", "app" or "data") for each subnet the network exports."""
    body = network.to_json()
    tiers = {}
    for output in body.get("Outputs", {}).values():
        value = output["Value"]
        subnet = body["Resources"].get(value.get("Ref")) if isinstance(value, dict) else None
        if subnet is not None and subnet["Type"] == "AWS::EC2::Subnet":
            tags = {tag["Key"]: tag["Value"] for tag in subnet["Properties"]["Tags"]}
            tiers[output["Export"]["Name"]] = tags["aws-cdk:subnet-name"]
    return tiers


def resources(template: Template, resource_type: str) -> list[dict[str, Any]]:
    return list(template.find_resources(resource_type).values())


def only(template: Template, resource_type: str) -> dict[str, Any]:
    (resource,) = resources(template, resource_type)
    return resource


def containers(template: Template) -> dict[str, dict[str, Any]]:
    """Container definitions of every task definition in a template, by container name."""
    return {
        container["Name"]: container
        for task in resources(template, "AWS::ECS::TaskDefinition")
        for container in task["Properties"]["ContainerDefinitions"]
    }


def policy_statements(template: Template) -> Iterator[dict[str, Any]]:
    for policy in resources(template, "AWS::IAM::Policy"):
        yield from policy["Properties"]["PolicyDocument"]["Statement"]
    for role in resources(template, "AWS::IAM::Role"):
        for policy in role["Properties"].get("Policies", []):
            yield from policy["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def task_definition_of(template: Template, container_name: str) -> tuple[str, dict[str, Any]]:
    """The logical id and resource of the task definition that runs ``container_name``."""
    (found,) = [
        (logical_id, task)
        for logical_id, task in template.find_resources("AWS::ECS::TaskDefinition").items()
        if container_name in {c["Name"] for c in task["Properties"]["ContainerDefinitions"]}
    ]
    return found


def task_role_statements(template: Template, container_name: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the task role of ``container_name``."""
    _, task = task_definition_of(template, container_name)
    return role_statements(template, task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0])


def rendered(value: Any) -> str:
    """A resource value as text, each bucket import replaced by ``<Name>`` and other references
    by ``*``: ``{"Fn::Join": ["", [<import of DataBucket ARN>, "/data/*"]]}`` is ``<Data>/data/*``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(rendered(part) for part in parts)
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        match = _IMPORTED_BUCKET.search(str(value["Fn::ImportValue"]))
        return f"<{match.group(1)}>" if match else "*"
    return "*"


def s3_grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, rendered resource) for every S3 action the statements allow."""
    return {
        (action, rendered(resource))
        for statement in statements
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        if action.startswith("s3:")
        for resource in as_list(statement["Resource"])
    }


def expected_grants(workload: str) -> set[tuple[str, str]]:
    """What S3_ACCESS says a workload's role may do, as (action, rendered resource)."""
    grants = set()
    for location, access in S3_ACCESS[workload].items():
        bucket = f"<{location.bucket}>"
        objects = f"{bucket}/{location.object_pattern}"
        grants |= {("s3:GetObject", objects), ("s3:GetObjectVersion", objects)}
        grants.add(("s3:ListBucket", bucket))
        if access is Access.READ_WRITE:
            grants |= {
                ("s3:PutObject", objects),
                ("s3:AbortMultipartUpload", objects),
                ("s3:ListMultipartUploadParts", objects),
            }
    return grants


def role_statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role with logical id ``role_id``."""
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy")
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
