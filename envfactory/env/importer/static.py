"""Static reading of a released paper module (`ast` only: the driver never imports it).

Finds what the sandbox worker will bind: the state class (by its `load_scenario` / `save_scenario`, not
by the metadata's `class_name`), its module-global instance, the `@<server>.tool()` functions with their
signatures, and the hazards to determinism and offline-ness with what the sandbox does about each.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

NETWORK_MODULES = {"requests", "httpx", "aiohttp", "urllib.request", "urllib3", "http.client", "socket",
                   "websocket", "websockets", "ftplib", "smtplib", "grpc", "boto3", "openai"}
NETWORK_CALLS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "urlopen", "Session",
                 "Client", "AsyncClient", "stream", "connect", "create_connection", "socket", "PoolManager",
                 "ClientSession", "HTTPConnection", "HTTPSConnection", "SMTP", "FTP", "client", "OpenAI"}
CLOCK_CALLS = {"datetime.now", "datetime.utcnow", "datetime.today", "date.today", "datetime.datetime.now",
               "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today", "time.time",
               "time.time_ns", "time.monotonic", "time.perf_counter", "time.localtime", "time.gmtime",
               "time.ctime", "time.asctime"}
TZ_CALLS = {"time.mktime", "time.localtime", "time.strftime", "datetime.fromtimestamp", "datetime.astimezone"}

# hazard kind -> what the sandbox does about it (None: nothing can; the environment is rejected)
FIXES = {
    "uuid": "uuid4/uuid1 seeded from the scenario in the sandbox",
    "random": "module-level random seeded from the scenario in the sandbox",
    "urandom": "os.urandom / secrets seeded from the scenario in the sandbox",
    "hash": "str hash() made stable by PYTHONHASHSEED=0 in the sandbox",
    "clock": "wall clock pinned to the scenario's current_time (or a fixed instant) in the sandbox",
    "local_tz": "local time zone fixed to UTC in the sandbox",
    "network": None,
}


@dataclass
class Signature:
    name: str
    params: list[str]
    required: list[str]
    annotations: dict[str, str]
    line: int
    is_async: bool = False
    has_kwargs: bool = False


@dataclass
class Hazard:
    kind: str
    line: int
    detail: str

    @property
    def fixed_by(self) -> str | None:
        return FIXES.get(self.kind)

    def describe(self) -> str:
        return f"{self.detail} (line {self.line})"


@dataclass
class ModelField:
    name: str
    required: bool
    pattern: str | None = None
    annotation: str = ""


@dataclass
class ModuleInfo:
    state_class: str | None = None
    candidate_classes: list[str] = field(default_factory=list)
    instance: str | None = None
    servers: list[str] = field(default_factory=list)
    fastmcp_imports: list[str] = field(default_factory=list)
    functions: dict[str, Signature] = field(default_factory=dict)  # recorded tool name -> function signature
    methods: dict[str, Signature] = field(default_factory=dict)    # methods of the state class
    hazards: list[Hazard] = field(default_factory=list)
    seeds_random: bool = False
    scenario_fields: dict[str, ModelField] = field(default_factory=dict)  # fields of the `*Scenario` model(s)

    def hazard_kinds(self) -> set[str]:
        return {h.kind for h in self.hazards}


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef, skip_self: bool = False) -> Signature:
    a = fn.args
    positional = a.posonlyargs + a.args
    if skip_self and positional:
        positional = positional[1:]
    n_required = len(positional) - len(a.defaults)
    required = [x.arg for x in positional[:max(0, n_required)]]
    required += [x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
    params = [x.arg for x in positional + a.kwonlyargs]
    annotations = {x.arg: ast.unparse(x.annotation) for x in positional + a.kwonlyargs if x.annotation is not None}
    return Signature(name=fn.name, params=params, required=required, annotations=annotations, line=fn.lineno,
                     is_async=isinstance(fn, ast.AsyncFunctionDef), has_kwargs=a.kwarg is not None)


def _tool_name(decorator: ast.expr, servers: set[str]) -> tuple[bool, str | None]:
    """Is this `@<server>.tool` / `@<server>.tool(...)`? And the name it registers under, if given."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call else decorator
    if not (isinstance(target, ast.Attribute) and target.attr == "tool"):
        return False, None
    if servers and not (isinstance(target.value, ast.Name) and target.value.id in servers):
        return False, None
    name = None
    if call:
        for kw in call.keywords:
            if kw.arg == "name" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                name = kw.value.value
        if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
            name = call.args[0].value
    return True, name


def _dotted(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def analyze_module(source: str, filename: str = "<module>") -> ModuleInfo:
    """Raises SyntaxError for a module that does not parse."""
    tree = ast.parse(source, filename=filename)
    info = ModuleInfo()
    aliases: dict[str, str] = {}  # local name -> "module" or "module.attr"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                if a.name.split(".")[0] in ("mcp", "fastmcp"):
                    info.fastmcp_imports.append(a.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                if node.module.split(".")[0] in ("mcp", "fastmcp"):
                    info.fastmcp_imports.append(f"{node.module}.{a.name}")

    # the FastMCP server objects and the module-global instances
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    global_calls: list[tuple[str, str]] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            callee = _dotted(node.value.func)
            for t in node.targets:
                if isinstance(t, ast.Name):
                    global_calls.append((t.id, callee))
                    if callee.split(".")[-1] == "FastMCP":
                        info.servers.append(t.id)
    for name, cls in classes.items():
        methods = {f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if {"load_scenario", "save_scenario"} <= methods:
            info.candidate_classes.append(name)
    instantiated = [(var, callee) for var, callee in global_calls if callee in info.candidate_classes]
    if instantiated:
        info.instance, info.state_class = instantiated[0]
    elif info.candidate_classes:
        info.state_class = info.candidate_classes[0]
    if info.state_class:
        for f in classes[info.state_class].body:
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and not f.name.startswith("__"):
                info.methods[f.name] = _signature(f, skip_self=True)

    for cls in classes.values():
        if cls.name.endswith("Scenario") and any("BaseModel" in ast.unparse(b) for b in cls.bases):
            for item in cls.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    info.scenario_fields[item.target.id] = _model_field(item)
    servers = set(info.servers)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in node.decorator_list:
                is_tool, name = _tool_name(d, servers)
                if is_tool:
                    info.functions[name or node.name] = _signature(node)
    _find_hazards(tree, aliases, info)
    return info


def _model_field(item: ast.AnnAssign) -> ModelField:
    """A pydantic field: required unless it has a default (`= v`, `Field(v)`, `Field(default=...)`, a factory)."""
    name, value, pattern = item.target.id, item.value, None
    required = value is None
    if isinstance(value, ast.Call) and _dotted(value.func).split(".")[-1] == "Field":
        first = value.args[0] if value.args else None
        keywords = {k.arg: k.value for k in value.keywords if k.arg}
        required = ("default" not in keywords and "default_factory" not in keywords
                    and (first is None or (isinstance(first, ast.Constant) and first.value is Ellipsis)))
        pat = keywords.get("pattern") or keywords.get("regex")
        if isinstance(pat, ast.Constant) and isinstance(pat.value, str):
            pattern = pat.value
    return ModelField(name=name, required=required, pattern=pattern, annotation=ast.unparse(item.annotation))


def _find_hazards(tree: ast.Module, aliases: dict[str, str], info: ModuleInfo) -> None:
    seen: set[tuple[str, str]] = set()

    def add(kind: str, line: int, detail: str) -> None:
        if (kind, detail) not in seen:
            seen.add((kind, detail))
            info.hazards.append(Hazard(kind, line, detail))

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        dotted = _dotted(node.func)
        if not dotted:
            continue
        head, _, rest = dotted.partition(".")
        full = aliases.get(head, head) + (f".{rest}" if rest else "")
        module, _, func = full.rpartition(".")
        if (module in NETWORK_MODULES or module.split(".")[0] in NETWORK_MODULES - {"urllib"}) and \
                func in NETWORK_CALLS:
            add("network", node.lineno, f"{full}()")
        elif full in ("uuid.uuid4", "uuid.uuid1"):
            add("uuid", node.lineno, f"{full}() ids")
        elif full.startswith("random.") and full != "random.seed":
            if full in ("random.Random", "random.SystemRandom") and node.args:
                continue
            add("random", node.lineno, f"{full}()")
        elif full == "random.seed":
            info.seeds_random = True
        elif full in ("os.urandom",) or full.startswith("secrets."):
            add("urandom", node.lineno, f"{full}()")
        elif full == "hash" and isinstance(node.func, ast.Name):
            add("hash", node.lineno, "builtin hash() of strings (salted per process)")
        elif _matches(full, CLOCK_CALLS) and not (full.endswith(("localtime", "gmtime", "ctime", "asctime"))
                                                  and node.args):
            add("clock", node.lineno, f"wall-clock read {full}()")
        elif _matches(full, TZ_CALLS):
            add("local_tz", node.lineno, f"local-time conversion {full}()")


def _matches(full: str, names: set[str]) -> bool:
    return full in names or any(full.endswith("." + n) and n.count(".") >= 1 for n in names)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def json_type_of(annotation: str | None) -> dict:
    """A JSON-schema type for a parameter annotation read from source (best effort)."""
    if not annotation:
        return {}
    a = annotation.replace("typing.", "").replace(" ", "")
    a = re.sub(r"^Optional\[(.*)\]$", r"\1", a)
    a = re.sub(r"\|None$", "", a)
    for prefix, t in (("str", "string"), ("int", "integer"), ("float", "number"), ("bool", "boolean"),
                      ("list", "array"), ("List", "array"), ("dict", "object"), ("Dict", "object")):
        if a == prefix or a.startswith(prefix + "["):
            return {"type": t}
    return {}
