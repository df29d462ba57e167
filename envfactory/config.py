"""The experiment configuration: one pydantic model, the single source of truth.

`config/schema.json` is generated from it (`envfactory config schema`), and the
Snakefile validates `config/config.yaml` against that schema before building
the DAG; every stage re-validates the resolved config with this model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evals.registry import BUILTIN, benchmark_names

from .env.limits import SandboxLimits
from .llm.types import ProviderConfig
from .train.settings import RLSettings, SFTSettings, TrainView

BenchmarkName = Literal[tuple(benchmark_names())]  # the registry decides (plugins included), the schema lists them


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvsConfig(_Strict):
    catalog: list[str] | Literal["all"] = Field(
        "all", description="bundled catalog environments to use: 'all' or a list of names")
    extra_dirs: list[str] = Field(default_factory=list,
                                  description="further environment packages to admit: package folders, or folders "
                                              "of packages such as an `envfactory envs import-release` output")
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits)
    count: int | None = Field(None, ge=1, description="training environments admitted (held-out ones always are): "
                                                      "a seeded, nested subset of the verified ones; null = all")

    @field_validator("catalog")
    @classmethod
    def _known_catalog(cls, names: list[str] | str) -> list[str] | str:
        """A misspelled catalog name is a config error naming the valid ones, not a failed envs stage later."""
        if names == "all":
            return names
        from .catalog import catalog_packages

        known = sorted(p.name for p in catalog_packages())
        problems = []
        bad = [n for n in names if n not in known]
        if bad:
            problems.append(f"envs.catalog: unknown environments {bad}; known: {known}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"envs.catalog: listed more than once: {dupes}")
        if problems:
            raise ValueError("; ".join(problems))
        return names


class EnvGenConfig(_Strict):
    provider: ProviderConfig | None = Field(
        None, description="LLM for synthesis; null = offline: synthesis is skipped and the manifest says so")
    seed_topics: list[str] = Field(default_factory=list, description="topics the proposer starts from")
    documents_dir: str | None = Field(None, description="folder of API docs / OpenAPI files to ground proposals")
    num_envs: int = Field(4, ge=1, description="environments to propose")
    max_revise_rounds: int = Field(3, ge=0, description="verify -> revise rounds before rejecting")
    min_scenarios: int = Field(2, ge=1)
    cache_dir: str | None = Field(None, description="response cache; default $ENVFACTORY_CACHE/llm or "
                                                    "~/.cache/envfactory/llm")
    cache_mode: Literal["use", "refresh", "replay", "off"] = "use"


class DataConfig(_Strict):
    sampler: Literal["topology", "random_walk"] = Field("topology",
                                                        description="chain sampler (random_walk = ablation)")
    compare_random_walk: bool = Field(True, description="also run the random-walk baseline and report its success rate")
    compare_attempts: int = Field(600, ge=1, description="attempts per sampler in the comparison")
    attempts_per_tool: int = Field(60, ge=1, description="sampling attempts per target tool (coverage pass)")
    chains_per_tool: int = Field(12, ge=1, description="verified chains wanted per target tool")
    max_depth: int = Field(4, ge=0, le=5, description="dependency depth (chains reach about depth + 2 calls); "
                                                      "the paper's recursion depth <= 5")
    max_envs: int = Field(1, ge=1, le=3, description="environments one chain may span")
    max_calls: int = Field(15, ge=1, le=15, description="tool calls (planned steps) one chain may have; "
                                                        "the paper's at most 15 tools per chain")
    p_chain: float = Field(0.9, ge=0, le=1, description="prefer an earlier tool's output over a user value")
    p_optional: float = Field(0.25, ge=0, le=1, description="probability of also setting an optional input")
    refine: bool = Field(True, description="calibrated refinement of queries (off = explicit instruction lists)")
    refiner: ProviderConfig | None = Field(None, description="LLM refiner; null = the rule-based refiner "
                                                             "(weaker baseline)")
    conversational: bool = Field(False, description="teacher rollouts talk to a user simulator over turns")
    user_simulator: ProviderConfig | None = None
    teacher: ProviderConfig | None = Field(None, description="teacher agent for extra rollouts; null = gold only")
    max_turns: int = Field(12, ge=1)
    heldout_envs: list[str] = Field(default_factory=list,
                                    description="environments kept out of training, to measure generalization: "
                                                "catalog names or names of packages in envs.extra_dirs (with an "
                                                "envgen provider also synthesized names, checked by the envs stage)")
    heldout_domains: list[str] = Field(default_factory=lambda: ["entertainment", "healthcare"],
                                       description="whole domains kept out of training (spec.json `domain`, e.g. "
                                                   "healthcare): every environment of a listed domain is held out, "
                                                   "so no sibling of a held-out environment is trained on")
    heldout_similarity: float = Field(0.5, ge=0, le=1,
                                      description="synthesized or imported (envs.extra_dirs) environments at least "
                                                  "this similar to a held-out one (Jaccard of tool-name words or "
                                                  "of (tool, parameters) signatures) are kept out of training and "
                                                  "reported in the manifest; catalog pairs are only reported")
    min_replay_rate: float = Field(
        1.0, ge=0, le=1, description="datasets stage: fraction of SFT + RL rows that must replay in a fresh sandbox "
                                     "to their recorded final state hash; below it no dataset is written")


    @field_validator("heldout_envs", "heldout_domains")
    @classmethod
    def _distinct_names(cls, names: list[str]) -> list[str]:
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes or any(not n.strip() for n in names):
            raise ValueError(f"held-out names must be distinct and non-empty: {names}")
        return names

    def is_heldout(self, name: str, domain: str | None) -> bool:
        """THE held-out decision (split, manifest, environment-count subsets all use it): the environment is
        named in `heldout_envs` or its domain is in `heldout_domains`."""
        return name in self.heldout_envs or (domain is not None and domain in self.heldout_domains)

    def heldout_among(self, domains: dict[str, str]) -> set[str]:
        """The held-out ones of `{env name: domain}`."""
        return {name for name, domain in domains.items() if self.is_heldout(name, domain)}


class HeldoutEvalConfig(_Strict):
    limit: int | None = Field(16, description="held-out tasks evaluated (deterministic subset); null = all")
    max_turns: int = Field(3, ge=1)
    max_new_tokens: int = Field(128, ge=8)


EngineName = Literal["transformers", "llama_cpp", "vllm"]


class GenerationSettings(_Strict):
    """How every in-process model path generates (held-out evaluation, the benchmarks' policy endpoint, the local
    provider): the engine (`envfactory/generation`) and how many episodes run at once."""
    engine: EngineName | None = Field(
        None, description="transformers (one request at a time), llama_cpp (GGUF export, KV cache kept across an "
                          "episode's turns; CPU) or vllm (GPU, served); null = the model card's")
    workers: int = Field(2, ge=1, description="llama_cpp contexts run in parallel (the CPU threads are split)")
    concurrency: int = Field(4, ge=1, description="episodes in flight, each with its own sandboxes")
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="vLLM's share of GPU memory (serving, colocated GRPO); null = the card's")


class TrainConfig(_Strict):
    model: str = Field("smollm2-135m", description="model card in envfactory/train/cards/ (its name names "
                                                   "results/<model>.json)")
    stages: list[Literal["sft", "rl"]] = Field(default_factory=lambda: ["sft", "rl"],
                                               description="training stages run in order; [] evaluates the base model")
    view: TrainView = Field(default_factory=TrainView)
    sft: SFTSettings = Field(default_factory=SFTSettings)
    rl: RLSettings = Field(default_factory=RLSettings)
    heldout: HeldoutEvalConfig = Field(default_factory=HeldoutEvalConfig)


class EvaluationConfig(_Strict):
    """Public benchmarks run on the final model (evals/); subset sizes keep the offline default small."""
    benchmarks: list[BenchmarkName] = Field(default_factory=lambda: list(BUILTIN),
                                            description="registered benchmarks (evals/registry.py)")
    limit: int | None = Field(2, description="tasks per category; null = the full benchmark")
    categories: dict[str, list[str]] = Field(
        default_factory=lambda: {"bfcl": ["simple", "multiple", "multi_turn_base"]},
        description="per benchmark; a benchmark not listed runs its adapter's default categories")
    options: dict[BenchmarkName, dict[str, Any]] = Field(
        default_factory=dict, description="per benchmark: the adapter's own settings, validated when it runs "
                                          "(capability: limit, num_fewshot, metrics, ...; evals/capability)")
    per_stage: list[BenchmarkName] = Field(
        default_factory=lambda: ["capability"],
        description="benchmarks (of `benchmarks`) also run on the base model and every trained stage, not only the "
                    "final one; results/<model>.json gets each trained stage's delta against base")
    num_trials: int = Field(1, ge=1, description="trials per task (pass^k)")
    trial_temperature: float = Field(0.7, ge=0, description="the policy's sampling temperature in every trial, each "
                                                            "trial with its own seed (0 makes every trial the same "
                                                            "greedy episode, so pass^k = pass^1)")
    max_turns: int = Field(6, ge=1)
    max_new_tokens: int = Field(256, ge=8)
    judge: ProviderConfig | None = Field(None, description="LLM judge (MCP-Atlas claims, VitaBench rubrics)")
    user_simulator: ProviderConfig | None = Field(None, description="user simulator (tau2, VitaBench)")
    policy_endpoint: ProviderConfig | None = Field(
        None, description="serve the trained model elsewhere (e.g. {name: openai, base_url: http://host:8000/v1, "
                          "model: <served name>}); null = the in-process transformers model")
    cache_dir: str | None = Field(None, description="LLM response cache for judge and user simulator")
    strict: bool = Field(False, description="malformed benchmark data rows fail the run; false = each is skipped "
                                            "and reported with its task id (metric skipped_rows)")

    @field_validator("options")
    @classmethod
    def _adapter_options(cls, options: dict) -> dict:
        """Each benchmark's options against its adapter's `options_model` (only those adapters are imported), so a
        typo fails when the config is read, not in the evaluation after training."""
        from evals.registry import get_benchmark

        for name, opts in options.items():
            model = getattr(get_benchmark(name), "options_model", None)
            if model is None:
                raise ValueError(f"benchmark {name} takes no options")
            try:
                model.model_validate(opts)
            except ValueError as e:  # pydantic's ValidationError included: name the benchmark
                raise ValueError(f"options of {name}: {e}") from None
        return options


class TrackingConfig(_Strict):
    enabled: bool = True
    tracking_uri: str = Field("sqlite:///mlruns/mlflow.db",
                              description="MLflow tracking URI: the embedded local store by default; "
                                          "http(s)://host:port for a team server")
    experiment_name: str = "envfactory"


class SweepMember(_Strict):
    """Which sweep point an experiment is; set by sweep expansion (envfactory/sweep.py), never by hand."""
    name: str
    variant: str
    seed: int


class ExperimentConfig(_Strict):
    experiment: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$",
                            description="name; outputs go to results/<experiment>/")
    seed: int = 0
    results_dir: str = "results"
    envs: EnvsConfig = Field(default_factory=EnvsConfig)
    envgen: EnvGenConfig = Field(default_factory=EnvGenConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    sweep: SweepMember | None = Field(None, description="set by sweep expansion: the sweep, variant and seed")

    @model_validator(mode="after")
    def _resolve_model_card(self):
        """Fill the training settings the config leaves unset from the model card and the experiment seed.

        Done once, here, so `config.json` holds the effective values: after its round trip every field counts
        as set and nothing is merged a second time (the stages read exactly what was written)."""
        from .train.model_card import load_card

        try:
            card = load_card(self.train.model)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from None
        deepspeed = f"zero{card.deepspeed_stage}" if card.deepspeed_stage else None
        sft, rl = self.train.sft, self.train.rl
        self.train.sft = _fill(sft, {"per_device_train_batch_size": card.per_device_train_batch_size,
                                     "gradient_accumulation_steps": card.gradient_accumulation_steps,
                                     "max_length": card.max_length, "learning_rate": card.sft_learning_rate,
                                     "lora": card.lora, "deepspeed": deepspeed, "seed": self.seed})
        # the card's micro-batch for RL too: a whole GRPO mini-batch in one forward pass (the old default) holds
        # every rollout's full-vocabulary logits at once (the rl_demo's 16 rollouts: killed at 22 GB)
        self.train.rl = _fill(rl, {"learning_rate": card.rl_learning_rate, "lora": card.lora,
                                   "per_device_train_batch_size": card.per_device_train_batch_size,
                                   "deepspeed": deepspeed, "seed": self.seed})
        # null (written or left out) means "the card's": the default config.yaml spells `engine: null` out
        gen = self.generation
        self.generation = gen.model_copy(update={k: v for k, v in {
            "engine": card.engine, "gpu_memory_utilization": card.gpu_memory_utilization}.items()
            if getattr(gen, k) is None})
        return self

    @model_validator(mode="after")
    def _check_heldout_names(self):
        """A misspelled `data.heldout_envs` name (or `heldout_domains` domain) would silently give an empty
        held-out split: names must be catalog environments or packages in `envs.extra_dirs`, domains theirs.
        With an EnvGen provider, unknown names may be synthesized ones: the envs stage checks them then."""
        if self.envgen.provider is not None:
            return self
        from .env.package import known_envs

        known = known_envs(self.envs.extra_dirs)
        domains = sorted(set(known.values()))
        bad_envs = [n for n in self.data.heldout_envs if n not in known]
        bad_domains = [d for d in self.data.heldout_domains if d not in domains]
        problems = []
        if bad_envs:
            problems.append(f"data.heldout_envs: unknown environments {bad_envs}; known: {sorted(known)}")
        if bad_domains:
            problems.append(f"data.heldout_domains: unknown domains {bad_domains}; known: {domains}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def out_dir(self) -> Path:
        return Path(self.results_dir) / self.experiment

    def config_hash(self) -> str:
        """Identity of the experiment: everything but where outputs and runs are written (so a relocated
        re-run, e.g. `envfactory repro`, has the same hash and byte-identical manifests)."""
        ident = self.model_dump(mode="json", exclude={"results_dir", "tracking"})
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _fill(settings: BaseModel, values: dict) -> BaseModel:
    """`settings` with `values` for the fields it does not set; the filled fields then count as set."""
    return settings.model_copy(update={k: v for k, v in values.items() if k not in settings.model_fields_set})


def load_config(path: str | Path) -> ExperimentConfig:
    text = Path(path).read_text()
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    return ExperimentConfig.model_validate(data or {})


def json_schema() -> dict:
    schema = ExperimentConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
