"""Reading the synthesized templates: resources by type, containers, and what each role may do.

The ``templates`` fixture (``conftest.py``) synthesizes every environment once per session; these
helpers read its ``Template`` objects as plain JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

Templates = dict[str, dict[str, "Template"]]
# A bucket's ARN or name arrives from the data stack as an import named after its construct.
_IMPORTED_BUCKET = re.compile(r"ExportsOutput(?:Ref|FnGetAtt)(\w+?)Bucket[0-9A-F]{8}")


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
    role_id = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy")
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


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
