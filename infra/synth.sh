#!/usr/bin/env bash
# `make infra`: synthesize every environment into infra/cdk.out, then cfn-lint the templates.
# Offline by design: no AWS account, no context lookups, no Docker (the image comes from ECR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="infra/cdk.out"

# jsii prints a banner for Node releases it has not tested or no longer supports; the synthesized
# templates do not depend on the Node version, so the banner is noise here.
node_major="$(node -p 'process.versions.node.split(".")[0]')"
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="$node_major"
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION=1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
export CDK_OUTDIR="$root/$out"

rm -rf "$out"
start=$SECONDS
# jsii's runtime type checks warn about protocols they cannot check; they are not about our code.
.venv/bin/python -W "ignore:Typeguard cannot check" -m infra.app
templates=("$out"/*.template.json)
.venv/bin/cfn-lint "${templates[@]}"
echo "infra: ${#templates[@]} templates synthesized and linted in $((SECONDS - start))s ($out)"
