#!/usr/bin/env bash
# Checks the SAM template (template.yaml):
#   1. cfn-lint (pinned in scripts/requirements.txt): any error or warning fails, no rule ignored;
#   2. it agrees with the code: every variable the functions read (the tables in
#      shared/src/config/mod.rs) is set on each function that reads it, parameter defaults equal
#      the code's defaults, and no secret (token, client secret, registry password) is ever a
#      parameter or an environment variable;
#   3. it agrees with the README: the "Deploy to AWS" parameter table lists exactly the
#      template's parameters, and every Name=value override shown there is a real parameter.
#
#   scripts/check-template.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/venv.sh

echo "check-template: cfn-lint template.yaml" >&2
.venv/bin/cfn-lint template.yaml

echo "check-template: template vs code and README" >&2
.venv/bin/python - <<'PY'
import re
import sys

from cfnlint.decode import cfn_yaml

problems = []
template = cfn_yaml.load("template.yaml")
parameters = template["Parameters"]
resources = template["Resources"]

# --- the variables the code reads, per function, with their defaults --------------------
config = open("shared/src/config/mod.rs", encoding="utf-8").read()
names = dict(re.findall(r'pub const ([A-Z0-9_]+): &str = "([A-Z0-9_]+)";', config))


def table(name):
    m = re.search(r"pub const " + name + r": &\[\(&str, &str, &str\)\] = &\[(.*?)\n    \];", config, re.S)
    if not m:
        return None
    rows = {}
    for ident, default in re.findall(r'\(\s*([A-Z0-9_]+)\s*,\s*(?:"((?:[^"\\]|\\.)*)"|[^,]+?)\s*,', m.group(1)):
        rows[names.get(ident, ident)] = default
    return rows


stage, load, maintain = table("STAGE"), table("LOAD"), table("MAINTAIN")
if stage is None or load is None:
    problems.append("shared/src/config/mod.rs: tables STAGE and LOAD not found")
    stage, load = stage or {}, load or {}
reads = {
    "StageFunction": stage,
    "LoadFunction": load,
    "MaintainFunction": {**load, **(maintain or {})},
}
# Read from the secret at cold start, never from a parameter or the template.
SECRETS = {"DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH"}
# Set only under a condition (stage reads the secret only with a schema registry).
CONDITIONAL = {"DELTASINK_SECRET_ARN", "DELTASINK_SECRET_SSM_PARAMETER"}

globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})


def parameter_of(value):
    """The parameter an environment value comes from: Ref P, or If [c, Ref P, NoValue]."""
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in parameters:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::If" in value:
        _, yes, no = value["Fn::If"]
        if no == {"Ref": "AWS::NoValue"}:
            return parameter_of(yes)
    return None


for function, variables in reads.items():
    env = {**globals_env, **resources[function]["Properties"].get("Environment", {}).get("Variables", {})}
    for var, default in variables.items():
        if var in SECRETS:
            continue
        if var not in env:
            problems.append(f"{function} reads {var} but template.yaml does not set it")
            continue
        param = parameter_of(env[var])
        if param is None or not default:
            continue
        param_default = str(parameters[param].get("Default", ""))
        if param_default and param_default != default:
            problems.append(f"parameter {param} defaults to {param_default!r}, the code's {var} to {default!r}")
    for var in env:
        if var.startswith(("DELTASINK_", "DATABRICKS_")) and var not in variables and var not in CONDITIONAL:
            problems.append(f"template.yaml sets {var} on {function}, which does not read it")

text = open("template.yaml", encoding="utf-8").read()
for secret in SECRETS:
    if re.search(r"^\s*" + secret + r"\s*:", text, re.M):
        problems.append(f"template.yaml sets the secret {secret} as an environment variable")
for name, spec in parameters.items():
    if re.search(r"token|password|clientsecret", name, re.I) or spec.get("NoEcho"):
        problems.append(f"parameter {name} looks like a secret: secrets come from SecretArn / SecretSsmParameterName")

# --- README "Deploy to AWS" ----------------------------------------------------------------
readme = open("README.md", encoding="utf-8").read()
m = re.search(r"^## Deploy to AWS\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
if not m:
    problems.append("README.md has no '## Deploy to AWS' section")
else:
    section = m.group(1)
    table_m = re.search(r"^### Parameters\n(.*?)(?=^### |\Z)", section, re.S | re.M)
    if not table_m:
        problems.append("README's 'Deploy to AWS' has no '### Parameters' table")
    documented = re.findall(r"^\| `([A-Za-z0-9]+)` \|", table_m.group(1) if table_m else "", re.M)
    for name in sorted(set(documented) - set(parameters)):
        problems.append(f"README documents parameter {name}, which template.yaml lacks")
    for name in sorted(set(parameters) - set(documented)):
        problems.append(f"README's parameter table lacks {name}")
    # Name=value overrides in code blocks (CamelCase: parameters, not variables).
    for block in re.findall(r"```.*?\n(.*?)```", section, re.S):
        for name in re.findall(r"(?<![A-Za-z0-9_$.-])([A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*)=", block):
            if name not in parameters:
                problems.append(f"README shows an override of {name}, which template.yaml lacks")

for p in problems:
    print(f"check-template: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"check-template: ok ({len(parameters)} parameters, {len(resources)} resources)", file=sys.stderr)
PY
