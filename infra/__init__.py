"""AWS deployment of the platform as a CDK app, plus container files for local parity.

``python -m infra.app`` (or ``cdk`` from this folder) synthesizes one stack set per environment.
"""
