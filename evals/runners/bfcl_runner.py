"""BFCL-v3 runner: executed by the bfcl venv's python (`bfcl_runner.py --request R --out O`).

Imports only the standard library and what `evals/requirements/bfcl.txt` installs: never `envfactory`.
It drives bfcl-eval's own generation loop (`_llm_response_generation.generate_results`: single-turn FC
inference, and multi-turn FC inference that executes the calls against the package's simulated APIs) and its
own scorers (`eval_checker.eval_runner.ast_file_runner` / `multi_turn_runner` / `relevance_file_runner`),
with a handler registered under a fresh model name:

- `model`:  an OpenAI chat-completions function-calling handler pointed at `base_url` (our in-process server,
            vLLM, or a hosted API);
- `oracle`: the same handler with the query replaced by the gold calls (single-turn: the first option of
            every possible-answer parameter; multi-turn: the ground-truth call list of each turn);
- `idle`:   the same handler with the query replaced by an empty text reply (no calls).

With `policy.handler == "bfcl-qwen-fc"` the package's own handler registered under `policy.bfcl_model`
(`Qwen/Qwen3-<size>-FC` -> `QwenFCHandler`, a local-model `OSSHandler`) generates instead, against the vLLM /
SGLang server named by the environment variables VLLM_ENDPOINT / VLLM_PORT, in the package's skip-server-setup
mode (`skip_server_setup=True`, the `--skip-server-setup` option of `bfcl generate`), with `local_model_path`
(`--local-model-path`) when the model is a local directory.

Request (JSON): {"policy": {"kind", "base_url", "model", "api_key_env", "temperature", "max_tokens",
"timeout_s", "max_retries", ["handler", "bfcl_model", "engine", "local_model_path", "skip_server_setup"]},
"categories": [...], "limit": int|null, "project_root": path, "num_threads": int, "data_dir": path|null}.
Result (JSON): {"package_version", "data_version", "data_checksum", "data_files", "model_name",
"categories": [{"category", "ids", "outcomes", "accuracy", "correct_count", "total_count", "size",
"inference_errors"}]} (`size`: entries in the category before `limit`).
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import importlib
import inspect
import json
import os
import re
import shutil
import sys
import time
import types
import urllib.request
import uuid
from pathlib import Path

PACKAGE = "bfcl-eval"


def _parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--request", required=True)
    p.add_argument("--out", required=True)
    return p.parse_args()


# --------------------------------------------------------------------------------------------- gold calls


def _pick(options: list, required: bool):
    """(keep, value) for one possible-answer option list: "" among the options marks the parameter optional,
    so it is left out unless the function requires it (the data has a few of those); otherwise the first
    non-empty option."""
    concrete = [o for o in options if o != ""]
    if not concrete or ("" in options and not required):
        return False, None
    return True, _first_option(concrete[0])


def _first_option(value):
    """A concrete value from a possible-answer value: dicts hold option lists per key, lists of dicts are
    positional dicts; anything else is taken as is."""
    if isinstance(value, dict):
        out = {}
        for k, options in value.items():
            if not isinstance(options, list):
                out[k] = options
                continue
            keep, v = _pick(options, required=False)
            if keep:
                out[k] = v
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [_first_option(v) for v in value]
    return value


def _offered_name(name: str, offered: dict) -> str:
    """The offered function a gold name refers to. A few single-turn answers drop the namespace of the
    documented name (simple_363: answer `find_closest`, function `restaurant_search.find_closest`)."""
    if name in offered:
        return name
    suffixed = [n for n in offered if n.endswith("." + name)]
    return suffixed[0] if len(suffixed) == 1 else name


def single_turn_gold_calls(possible_answer: list, functions: list[dict]) -> list[tuple[str, dict]]:
    """[{func: {param: [options]}}] -> [(func, {param: value})], the first non-empty option of every
    parameter; optional parameters ("" among the options) are left out unless the function requires them."""
    offered = {f["name"]: f for f in functions}
    calls = []
    for item in possible_answer:
        for name, params in item.items():
            name = _offered_name(name, offered)
            required = set(offered.get(name, {}).get("parameters", {}).get("required", []))
            args = {}
            for param, options in params.items():
                keep, value = _pick(options, param in required)
                if keep:
                    args[param] = value
            calls.append((name, args))
    return calls


def single_turn_unscorable(functions: list[dict], possible_answer: list) -> bool:
    """Whether the package's AST checker rejects every answer: the possible answer contradicts the function
    doc (a required parameter with no allowed value, or a non-optional parameter the function does not
    have, or a function that is not offered). A handful of live_* entries are like that."""
    offered = {f["name"]: f for f in functions}
    for item in possible_answer:
        for name, params in item.items():
            func = offered.get(_offered_name(name, offered))
            if func is None:
                return True
            props = func.get("parameters", {}).get("properties", {})
            for r in func.get("parameters", {}).get("required", []):
                if not [o for o in params.get(r, []) if o != ""]:
                    return True
            if any(p not in props and "" not in options for p, options in params.items()):
                return True
    return False


def _method_params(involved_classes: list[str], name: str) -> list[str]:
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import (
        CLASS_FILE_PATH_MAPPING,
    )

    for cls_name in reversed(involved_classes):  # the package binds a shared method name to the last class
        cls = getattr(importlib.import_module(CLASS_FILE_PATH_MAPPING[cls_name]), cls_name)
        if hasattr(cls, name):
            return [p for p in inspect.signature(getattr(cls, name)).parameters if p != "self"]
    raise KeyError(f"no method {name!r} in {involved_classes}")


def multi_turn_gold_calls(call_strings: list[str], involved_classes: list[str]) -> list[tuple[str, dict]]:
    """["cd(folder='x')", "sort('a.txt')"] -> [(name, kwargs)]; positional arguments named by the method's
    signature in the package's simulated API classes."""
    calls = []
    for s in call_strings:
        node = ast.parse(s.strip(), mode="eval").body
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            raise ValueError(f"unsupported ground-truth call {s!r}")
        name = node.func.id
        args = {}
        if node.args:
            names = _method_params(involved_classes, name)
            for pname, arg in zip(names, node.args):
                args[pname] = ast.literal_eval(arg)
        for kw in node.keywords:
            args[kw.arg] = ast.literal_eval(kw.value)
        calls.append((name, args))
    return calls


def _fake_completion(calls: list[tuple[str, dict]] | None, content: str = ""):
    """An object shaped like openai's ChatCompletion, enough for the handler's FC parsing."""
    tool_calls = None
    if calls:
        tool_calls = [types.SimpleNamespace(id=f"call_{uuid.uuid4().hex[:12]}", type="function",
                                            function=types.SimpleNamespace(name=n, arguments=json.dumps(a)))
                      for n, a in calls]
    message = types.SimpleNamespace(role="assistant", content=None if tool_calls else content,
                                    tool_calls=tool_calls)
    return types.SimpleNamespace(choices=[types.SimpleNamespace(message=message, finish_reason="stop")],
                                 usage=types.SimpleNamespace(prompt_tokens=0, completion_tokens=0))


# --------------------------------------------------------------------------------------------- handlers


def make_handler_class(policy: dict, gold: dict):
    """A subclass of bfcl-eval's OpenAI chat-completions handler (FC mode), configured by the request."""
    import openai
    from bfcl_eval.model_handler.api_inference.openai_completion import (
        OpenAICompletionsHandler,
    )

    kind = policy["kind"]

    class EnvFactoryHandler(OpenAICompletionsHandler):
        def __init__(self, model_name, temperature) -> None:
            super().__init__(model_name, temperature)
            self.is_fc_model = True
            if kind == "model":
                key = os.environ.get(policy.get("api_key_env") or "", "") or os.environ.get("OPENAI_API_KEY", "none")
                self.client = openai.OpenAI(base_url=policy.get("base_url"), api_key=key,
                                            timeout=float(policy.get("timeout_s", 600.0)),
                                            max_retries=int(policy.get("max_retries", 2)))

        # The package's `retry_with_backoff` waits 6..120 s on rate limits, and its thread loop sleeps 65 s on
        # HTTP 429/500/503; the openai client already retries (max_retries), so errors surface immediately
        # here and the entry is recorded as an inference error.
        def generate_with_backoff(self, **kwargs):
            start = time.time()
            try:
                response = self.client.chat.completions.create(**kwargs)
            except openai.APIError as e:
                raise RuntimeError(f"{type(e).__name__}: {e}") from None
            return response, time.time() - start

        def _pre_query_processing_FC(self, inference_data: dict, test_entry: dict) -> dict:
            inference_data = super()._pre_query_processing_FC(inference_data, test_entry)
            inference_data["_entry"] = {"id": test_entry["id"],
                                        "involved_classes": test_entry.get("involved_classes", []),
                                        "functions": copy.deepcopy(test_entry.get("function", []))}
            inference_data["_turn"] = -1
            return inference_data

        def add_first_turn_message_FC(self, inference_data: dict, first_turn_message: list[dict]) -> dict:
            inference_data["_turn"], inference_data["_answered"] = 0, False
            return super().add_first_turn_message_FC(inference_data, first_turn_message)

        def _add_next_turn_user_message_FC(self, inference_data: dict, user_message: list[dict]) -> dict:
            inference_data["_turn"] += 1
            inference_data["_answered"] = False
            return super()._add_next_turn_user_message_FC(inference_data, user_message)

        def _query_FC(self, inference_data: dict):
            if kind == "model":
                kwargs = {"messages": inference_data["message"], "model": policy.get("model") or "policy",
                          "temperature": self.temperature, "max_tokens": int(policy.get("max_tokens", 512))}
                if inference_data["tools"]:
                    kwargs["tools"] = inference_data["tools"]
                inference_data["inference_input_log"] = {"message": repr(inference_data["message"]),
                                                         "tools": inference_data["tools"]}
                return self.generate_with_backoff(**kwargs)
            if kind == "idle":
                return _fake_completion(None, ""), 0.0
            # oracle: the gold calls once per turn, then an empty reply that ends the turn
            entry = inference_data["_entry"]
            if inference_data["_answered"]:
                return _fake_completion(None, ""), 0.0
            inference_data["_answered"] = True
            answer = gold[entry["id"]]
            if "irrelevance" in entry["id"]:  # none of the offered functions fits: the right answer is no call
                return _fake_completion(None, "None of the available functions can answer this."), 0.0
            if "multi_turn" in entry["id"]:
                calls = multi_turn_gold_calls(answer[inference_data["_turn"]], entry["involved_classes"])
            elif answer is None:  # live_relevance: no possible answer; any call to an offered function counts
                calls = [(entry["functions"][0]["name"], {})] if entry["functions"] else []
            else:
                calls = single_turn_gold_calls(answer, entry["functions"])
            # the names the model sees: the OpenAI-style tool compilation turns '.' into '_'
            calls = [(re.sub(r"\.", "_", n), a) for n, a in calls]
            return _fake_completion(calls), 0.0

    return EnvFactoryHandler


# --------------------------------------------------------------------------------------------- BFCL's own handler

QWEN_FC = "bfcl-qwen-fc"


def generation_args(request: dict, result_dir) -> argparse.Namespace:
    """The arguments of the package's `generate_results`, i.e. the options of `bfcl generate`
    (bfcl_eval/__main__.py `generate`, bfcl_eval/_llm_response_generation.py `get_args`)."""
    policy = request["policy"]
    args = argparse.Namespace(temperature=float(policy.get("temperature", 0.0)),
                              num_threads=max(1, int(request.get("num_threads", 1))), include_input_log=False,
                              exclude_state_log=True, result_dir=result_dir, run_ids=False, allow_overwrite=True)
    if policy.get("handler") == QWEN_FC:
        # --skip-server-setup: launch no vLLM/SGLang, use the running one at VLLM_ENDPOINT:VLLM_PORT
        # (OSSHandler.batch_inference); --backend only matters when the package launches the server itself.
        args.skip_server_setup = bool(policy.get("skip_server_setup", True))
        args.backend = policy["engine"]
        args.local_model_path = policy.get("local_model_path")
        args.num_gpus, args.gpu_memory_utilization = 1, 0.9  # server-launch options, unused here
    return args


def served_model_id(policy: dict) -> str:
    """The model id BFCL's Qwen FC handler puts in its requests: `OSSHandler.batch_inference` sends
    `model=local_model_path or model_name_huggingface`, and `QwenFCHandler` strips "-FC" from its name."""
    return policy.get("local_model_path") or policy["bfcl_model"].replace("-FC", "")


def check_server(policy: dict, timeout_s: float = 30.0) -> None:
    """Fail fast where the package would wait forever: it polls `<base>/models` until the server answers, and
    then requests a model id the server must serve."""
    host, port = os.environ.get("VLLM_ENDPOINT"), os.environ.get("VLLM_PORT")
    if not host or not port:
        raise SystemExit("bfcl-qwen-fc: VLLM_ENDPOINT and VLLM_PORT must name the running vLLM/SGLang server")
    url = f"http://{host}:{port}/v1/models"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            served = [m.get("id") for m in json.loads(r.read()).get("data", [])]
    except (OSError, ValueError) as e:
        raise SystemExit(f"bfcl-qwen-fc: {url} did not answer ({e}); "
                         f"is the {policy.get('engine')} server up?") from None
    want = served_model_id(policy)
    if want not in served:
        raise SystemExit(f"bfcl-qwen-fc: BFCL's handler requests model={want!r}, the server at {url} serves "
                         f"{served}; serve the model under that name")


# --------------------------------------------------------------------------------------------- main


def sha256_files(paths: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(set(paths), key=lambda p: str(p)):
        h.update(str(p.relative_to(root) if p.is_relative_to(root) else p.name).encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def main() -> int:
    args = _parse_args()
    request = json.loads(Path(args.request).read_text())
    policy = request["policy"]
    project_root = Path(request["project_root"]).resolve()
    project_root.mkdir(parents=True, exist_ok=True)
    # bfcl-eval reads these at import time: results/scores go under the per-run root, and its OpenAI handler
    # constructs a client (which needs some key) even when we replace it.
    os.environ["BFCL_PROJECT_ROOT"] = str(project_root)
    os.environ.setdefault("OPENAI_API_KEY", "sk-envfactory-dummy")

    from importlib.metadata import version

    from bfcl_eval._llm_response_generation import (
        generate_results,
        process_multi_turn_test_case,
    )
    from bfcl_eval.constants.category_mapping import (
        MULTI_TURN_FUNC_DOC_FILE_MAPPING,
        TEST_FILE_MAPPING,
    )
    from bfcl_eval.constants.eval_config import (
        MULTI_TURN_FUNC_DOC_PATH,
        PROMPT_PATH,
        RESULT_PATH,
        SCORE_PATH,
    )
    from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING, ModelConfig
    from bfcl_eval.eval_checker.eval_runner import (
        ast_file_runner,
        multi_turn_runner,
        relevance_file_runner,
    )
    from bfcl_eval.utils import (
        is_java,
        is_js,
        is_multi_turn,
        is_relevance_or_irrelevance,
        load_file,
        sort_key,
    )

    assert RESULT_PATH.parent == project_root, (RESULT_PATH, project_root)
    data_dir = Path(request["data_dir"]) if request.get("data_dir") else PROMPT_PATH
    answer_dir = data_dir / "possible_answer"

    categories: list[str] = request["categories"]
    unknown = [c for c in categories if c not in TEST_FILE_MAPPING]
    if unknown:
        raise SystemExit(f"unknown BFCL categories {unknown}; known: {sorted(TEST_FILE_MAPPING)}")
    limit = request.get("limit")

    # Load the subset: the first `limit` entries of each category in id order (deterministic).
    entries: dict[str, list[dict]] = {}
    sizes: dict[str, int] = {}
    gold: dict[str, object] = {}
    used_files: list[Path] = []
    for cat in categories:
        qfile = data_dir / TEST_FILE_MAPPING[cat]
        rows = load_file(qfile, sort_by_id=True)
        sizes[cat] = len(rows)
        rows = rows[:limit] if limit is not None else rows
        entries[cat] = rows
        used_files.append(qfile)
        if is_relevance_or_irrelevance(cat):
            for r in rows:
                gold[r["id"]] = None
        else:
            afile = answer_dir / TEST_FILE_MAPPING[cat]
            used_files.append(afile)
            answers = {a["id"]: a["ground_truth"] for a in load_file(afile)}
            for r in rows:
                gold[r["id"]] = answers[r["id"]]
        if is_multi_turn(cat):
            for r in rows:
                used_files.extend(MULTI_TURN_FUNC_DOC_PATH / MULTI_TURN_FUNC_DOC_FILE_MAPPING[c]
                                  for c in r["involved_classes"])

    if policy.get("handler") == QWEN_FC:
        # The package's own handler under its registered name; result and score folders are named as the
        # package names them ('/' -> '_'), and emptied: the name is the same every run.
        model_name = policy["bfcl_model"]
        config = MODEL_CONFIG_MAPPING.get(model_name)
        if config is None or config.model_handler.__name__ != "QwenFCHandler":
            known = sorted(n for n, c in MODEL_CONFIG_MAPPING.items() if c.model_handler.__name__ == "QwenFCHandler")
            raise SystemExit(f"bfcl-qwen-fc: {model_name!r} is not a Qwen FC model of this bfcl-eval; it has {known}")
        check_server(policy)
        file_name = model_name.replace("/", "_")
        for d in (RESULT_PATH / file_name, SCORE_PATH / file_name):
            if d.is_dir():
                shutil.rmtree(d)
        handler = config.model_handler(model_name, 0)  # decoding only
        handler.is_fc_model = config.is_fc_model
    else:
        # A fresh model name per run: bfcl-eval caches the simulated API instances of multi-turn entries in
        # module globals keyed by (model name, entry id), and its checker maps '_' back to '/' to look the name
        # up, so the name has no underscore.
        model_name = f"envfactory-{policy['kind']}-{uuid.uuid4().hex[:12]}"
        file_name = model_name
        handler_cls = make_handler_class(policy, gold)
        MODEL_CONFIG_MAPPING[model_name] = ModelConfig(
            model_name=model_name, display_name=f"EnvFactory {policy['kind']} (FC)", url="", org="envfactory",
            license="", model_handler=handler_cls, is_fc_model=True, underscore_to_dot=True)
        handler = handler_cls(model_name, 0)  # decoding only
        handler.is_fc_model = True

    test_cases = []
    for cat in categories:
        test_cases.extend(copy.deepcopy(entries[cat]))
    test_cases = sorted(process_multi_turn_test_case(test_cases), key=sort_key)

    gen_args = generation_args(request, RESULT_PATH)
    step_limit = request.get("max_steps_per_turn")
    if step_limit:  # the package's per-turn cap (20) is a module global the handler imported by name
        import bfcl_eval.model_handler.base_handler as base_handler

        base_handler.MAXIMUM_STEP_LIMIT = int(step_limit)
    t0 = time.time()
    if test_cases:
        generate_results(gen_args, model_name, test_cases)
    gen_s = time.time() - t0

    out_categories = []
    for cat in categories:
        rows = entries[cat]
        if not rows:
            out_categories.append({"category": cat, "ids": [], "outcomes": [], "accuracy": 0.0,
                                   "correct_count": 0, "total_count": 0, "size": sizes[cat], "inference_errors": 0,
                                   "unscorable_ids": []})
            continue
        result_file = RESULT_PATH / file_name / TEST_FILE_MAPPING[cat].replace(".json", "_result.json")
        model_result = load_file(result_file, sort_by_id=True)
        ids = [r["id"] for r in rows]
        if [r["id"] for r in model_result] != ids:
            raise SystemExit(f"{cat}: result ids do not match the requested entries")
        errors = sum(1 for r in model_result
                     if isinstance(r["result"], str) and r["result"].startswith("Error during inference"))
        prompt = copy.deepcopy(rows)
        language = "Java" if is_java(cat) else "JavaScript" if is_js(cat) else "Python"
        if is_relevance_or_irrelevance(cat):
            accuracy, total = relevance_file_runner(handler, model_result, prompt, file_name, cat, SCORE_PATH)
        else:
            possible = [{"id": i, "ground_truth": copy.deepcopy(gold[i])} for i in ids]
            if is_multi_turn(cat):
                accuracy, total = multi_turn_runner(handler, model_result, prompt, possible, file_name, cat,
                                                    SCORE_PATH)
            else:
                accuracy, total = ast_file_runner(handler, model_result, prompt, possible, language, cat,
                                                  file_name, SCORE_PATH)
        # Per-entry outcomes: the score file lists a header, then one record per failed entry.
        score_rows = load_file(SCORE_PATH / file_name / TEST_FILE_MAPPING[cat].replace(".json", "_score.json"))
        header, failures = score_rows[0], score_rows[1:]
        failed = {f["id"] for f in failures}
        outcomes = [0 if i in failed else 1 for i in ids]
        if sum(outcomes) != header["correct_count"] or total != len(ids):
            raise SystemExit(f"{cat}: per-entry outcomes ({sum(outcomes)}/{len(ids)}) disagree with the "
                             f"package's count ({header['correct_count']}/{total})")
        # Entries no policy can pass: the data has more ground-truth turns than user turns (the package then
        # reports every answer as force-terminated), e.g. multi_turn_base_154 in this release.
        # Single-turn: the possible answer contradicts the function doc (single_turn_unscorable).
        if is_multi_turn(cat):
            unscorable = [r["id"] for r in rows if len(r["question"]) != len(gold[r["id"]])]
        elif is_relevance_or_irrelevance(cat):
            unscorable = []
        else:
            unscorable = [r["id"] for r in rows if single_turn_unscorable(r["function"], gold[r["id"]])]
        out_categories.append({"category": cat, "ids": ids, "outcomes": outcomes, "accuracy": accuracy,
                               "correct_count": header["correct_count"], "total_count": total,
                               "size": sizes[cat], "inference_errors": errors, "unscorable_ids": unscorable})

    result = {
        "package_version": f"{PACKAGE}=={version(PACKAGE)}",
        "data_version": f"{PACKAGE}=={version(PACKAGE)} BFCL_v3" + ("" if data_dir == PROMPT_PATH else " (data_dir)"),
        "data_checksum": sha256_files(used_files, data_dir.parent),
        "data_files": sorted({str(p) for p in used_files}),
        "model_name": model_name,
        "generation_s": gen_s,
        "categories": out_categories,
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
