"""Read a SAM/CloudFormation template and resolve it the way CloudFormation would, locally.

- `load_template(path)`: YAML with the short-form tags (`!Ref`, `!GetAtt`, `!Sub`, `!If`, ...)
  turned into their long form (`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`, ...).
- `apply_globals(template)`: SAM `Globals` merged into each serverless resource (primitives are
  overridden by the resource, maps are merged, lists are appended, as SAM documents).
- `Resolver`: parameters (defaults + overrides, validated), pseudo parameters, conditions and the
  intrinsic functions Ref, Fn::GetAtt, Fn::Sub (both forms), Fn::If, Fn::Equals/Not/And/Or,
  Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, Fn::Base64 and AWS::NoValue.

Nothing here talks to AWS: Ref/GetAtt of a resource is answered by a callback (the local stack
knows the physical names and ARNs).
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "NO_VALUE",
    "Resolver",
    "TemplateError",
    "apply_globals",
    "load_template",
]


class TemplateError(Exception):
    """The template cannot be resolved locally (unknown reference, bad parameter, ...)."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# --------------------------------------------------------------------------------------------
# YAML loading with CloudFormation short-form tags
# --------------------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")  # pragma: no cover


def _tag_constructor(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], Any]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        value = _construct(node, loader)
        if tag == "Ref":
            return {"Ref": value}
        if tag == "Condition":
            return {"Condition": value}
        if tag == "GetAtt" and isinstance(value, str):
            logical_id, _, attribute = value.partition(".")
            return {"Fn::GetAtt": [logical_id, attribute]}
        return {f"Fn::{tag}": value}

    return construct


for _tag in (
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Cidr",
    "Length",
    "ToJsonString",
):
    _CfnLoader.add_constructor(f"!{_tag}", _tag_constructor(_tag))


def _no_dates(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    # CloudFormation keeps "2010-09-09" a string; PyYAML would make it a date.
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", _no_dates)


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a JSON or YAML CloudFormation/SAM template into plain long-form dicts."""
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return data


# --------------------------------------------------------------------------------------------
# SAM Globals
# --------------------------------------------------------------------------------------------

_GLOBALS_SECTIONS = {
    "Function": "AWS::Serverless::Function",
    "Api": "AWS::Serverless::Api",
    "HttpApi": "AWS::Serverless::HttpApi",
    "SimpleTable": "AWS::Serverless::SimpleTable",
    "StateMachine": "AWS::Serverless::StateMachine",
    "LayerVersion": "AWS::Serverless::LayerVersion",
}


def _merge_global(global_value: Any, local_value: Any) -> Any:
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        # Intrinsic functions are values, not maps to merge.
        if any(k == "Ref" or k.startswith("Fn::") for k in local_value):
            return copy.deepcopy(local_value)
        merged = copy.deepcopy(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_global(merged[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return copy.deepcopy(global_value) + copy.deepcopy(local_value)
    return copy.deepcopy(local_value)


def apply_globals(template: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the template with SAM Globals merged into each resource's Properties."""
    result = copy.deepcopy(template)
    global_sections = result.pop("Globals", None) or {}
    for section, global_props in global_sections.items():
        resource_type = _GLOBALS_SECTIONS.get(section)
        if resource_type is None:
            raise TemplateError(f"Globals: unknown section {section!r}")
        for resource in result["Resources"].values():
            if resource.get("Type") != resource_type:
                continue
            props = resource.setdefault("Properties", {})
            for key, value in global_props.items():
                props[key] = (
                    _merge_global(value, props[key]) if key in props else copy.deepcopy(value)
                )
    return result


# --------------------------------------------------------------------------------------------
# Intrinsic functions
# --------------------------------------------------------------------------------------------

_SUB_VAR = re.compile(r"\$\{([^}]*)\}")

RefCallback = Callable[[str], Any]
GetAttCallback = Callable[[str, str], Any]


class Resolver:
    """Resolves parameters, conditions and intrinsic functions of one template.

    `ref_resource(logical_id)` and `getatt_resource(logical_id, attribute)` answer for
    resources; they may raise TemplateError.
    """

    def __init__(
        self,
        template: dict[str, Any],
        *,
        parameter_overrides: dict[str, str] | None = None,
        stack_name: str,
        region: str,
        account_id: str,
        partition: str = "aws",
        ref_resource: RefCallback,
        getatt_resource: GetAttCallback,
    ) -> None:
        self.template = template
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.partition = partition
        self._ref_resource = ref_resource
        self._getatt_resource = getatt_resource
        self.parameters = self._resolve_parameters(parameter_overrides or {})
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    # -- parameters -------------------------------------------------------------------------

    def _resolve_parameters(self, overrides: dict[str, str]) -> dict[str, Any]:
        declared = self.template.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"unknown parameter(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                raw: Any = overrides[name]
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no default and no override")
            values[name] = self._check_parameter(name, spec, raw)
        return values

    @staticmethod
    def _check_parameter(name: str, spec: dict[str, Any], raw: Any) -> Any:
        ptype = spec.get("Type", "String")
        value = raw if isinstance(raw, list) else str(raw)
        if isinstance(raw, bool):
            value = "true" if raw else "false"
        if ptype == "Number":
            try:
                number = float(value)
            except ValueError as exc:
                raise TemplateError(f"parameter {name}: {value!r} is not a number") from exc
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise TemplateError(f"parameter {name}: {value} < MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TemplateError(f"parameter {name}: {value} > MaxValue {spec['MaxValue']}")
        if ptype in ("CommaDelimitedList", "List<Number>") or ptype.startswith("List<"):
            return [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}: {value!r} not in AllowedValues {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise TemplateError(f"parameter {name}: {value!r} does not match {pattern!r}")
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            raise TemplateError(f"parameter {name}: longer than MaxLength {spec['MaxLength']}")
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            raise TemplateError(f"parameter {name}: shorter than MinLength {spec['MinLength']}")
        return value

    def pseudo(self, name: str) -> Any:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:"
                f"stack/{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in pseudo:
            raise TemplateError(f"unknown pseudo parameter {name}")
        return pseudo[name]

    # -- conditions -------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        if name in self._evaluating:
            raise TemplateError(f"condition {name} refers to itself")
        self._evaluating.add(name)
        try:
            value = self.resolve(conditions[name])
        finally:
            self._evaluating.discard(name)
        if not isinstance(value, bool):
            raise TemplateError(f"condition {name} is not a boolean: {value!r}")
        self._conditions[name] = value
        return value

    def resource_enabled(self, resource: dict[str, Any]) -> bool:
        cond = resource.get("Condition")
        return True if cond is None else self.condition(cond)

    # -- intrinsic functions ----------------------------------------------------------------

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template["Resources"]:
            return self._ref_resource(name)
        raise TemplateError(f"Ref to unknown name {name!r}")

    def getatt(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.template["Resources"]:
            raise TemplateError(f"Fn::GetAtt of unknown resource {logical_id!r}")
        return self._getatt_resource(logical_id, attribute)

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            expr = expr.strip()
            if expr in variables:
                value = variables[expr]
            elif "." in expr and not expr.startswith("AWS::"):
                logical_id, _, attribute = expr.partition(".")
                value = self.getatt(logical_id, attribute)
            else:
                value = self.ref(expr)
            if isinstance(value, list | dict) or value is NO_VALUE:
                raise TemplateError(f"Fn::Sub: ${{{expr}}} is not a string: {value!r}")
            return str(value)

        return _SUB_VAR.sub(replace, text)

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function in `value` (recursively)."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = self._functions().get(key)
            if handler is not None:
                return handler(arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": lambda arg: self.ref(self.resolve(arg)),
            "Condition": lambda arg: self.condition(arg),
            "Fn::GetAtt": self._fn_getatt,
            "Fn::Sub": self._fn_sub,
            "Fn::If": self._fn_if,
            "Fn::Equals": self._fn_equals,
            "Fn::Not": lambda arg: not self._bool(self.resolve(arg)[0]),
            "Fn::And": lambda arg: all(self._bool(v) for v in self.resolve(arg)),
            "Fn::Or": lambda arg: any(self._bool(v) for v in self.resolve(arg)),
            "Fn::Join": self._fn_join,
            "Fn::Select": self._fn_select,
            "Fn::Split": self._fn_split,
            "Fn::FindInMap": self._fn_findinmap,
            "Fn::Base64": lambda arg: base64.b64encode(
                str(self.resolve(arg)).encode("utf-8")
            ).decode("ascii"),
            "Fn::GetAZs": lambda arg: [f"{self.region}{z}" for z in "abc"],
        }

    @staticmethod
    def _bool(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise TemplateError(f"not a condition value: {value!r}")

    def _fn_getatt(self, arg: Any) -> Any:
        if isinstance(arg, str):
            logical_id, _, attribute = arg.partition(".")
        else:
            logical_id, attribute = arg[0], self.resolve(arg[1])
        return self.getatt(logical_id, attribute)

    def _fn_sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            return self.sub(arg, {})
        text, variables = arg[0], arg[1] if len(arg) > 1 else {}
        return self.sub(text, {k: self.resolve(v) for k, v in variables.items()})

    def _fn_if(self, arg: Any) -> Any:
        name, if_true, if_false = arg
        return self.resolve(if_true if self.condition(name) else if_false)

    def _fn_equals(self, arg: Any) -> bool:
        left, right = (self.resolve(v) for v in arg)
        return str(left) == str(right) if not isinstance(left, list) else left == right

    def _fn_join(self, arg: Any) -> str:
        delimiter, items = arg[0], self.resolve(arg[1])
        if not isinstance(items, list):
            raise TemplateError(f"Fn::Join needs a list, got {items!r}")
        return str(delimiter).join(str(i) for i in items)

    def _fn_select(self, arg: Any) -> Any:
        index, items = int(self.resolve(arg[0])), self.resolve(arg[1])
        if not isinstance(items, list) or not 0 <= index < len(items):
            raise TemplateError(f"Fn::Select index {index} out of range for {items!r}")
        return items[index]

    def _fn_split(self, arg: Any) -> list[str]:
        delimiter, text = arg[0], self.resolve(arg[1])
        return str(text).split(delimiter)

    def _fn_findinmap(self, arg: Any) -> Any:
        name, top, second = (self.resolve(v) for v in arg[:3])
        try:
            return self.template["Mappings"][name][top][second]
        except KeyError as exc:
            raise TemplateError(f"Fn::FindInMap: no {name}/{top}/{second}") from exc
