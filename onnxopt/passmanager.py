"""Pass machinery: Pass, PassResult, PassContext, the registry and groups, PassManager, instruments."""
from __future__ import annotations

import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterable, Sequence

from onnxopt.errors import OnnxoptError, PassError, UnknownPassError
from onnxopt.ir import Model, Node, keep_inferred_types, lint, save

logger = logging.getLogger(__name__)

GROUPS = ("fold", "cleanup", "fuse", "dce")
DEFAULT_PIPELINE = ("fold", "cleanup", "fuse")


@dataclass
class PassContext:
    """Options every pass may read: target runtime, folding budget, fixed input shapes, rules to explain."""

    target: str = "onnx"
    fold_max_bytes: int = 4 * 1024 * 1024
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    explain: frozenset[str] = frozenset()
    explanations: list[str] = field(default_factory=list)
    verification: object = None  # a verify.VerifyReport when verification ran
    excluded_passes: list[str] = field(default_factory=list)


@dataclass
class PassResult:
    """What a pass returns: the model (changed in place) and whether anything changed, plus optional counters."""

    model: Model
    modified: bool
    counters: dict[str, int] = field(default_factory=dict)


class Pass:
    """Base class. Subclasses set `name`, `groups`, a one-line docstring `Before → After`, and implement call()."""

    name: ClassVar[str] = ""
    groups: ClassVar[tuple[str, ...]] = ()
    # True for a pass that only removes what nothing reads: cached shape inference stays valid across it
    removes_only_unread: ClassVar[bool] = False
    # True for a pass that also runs once before the first iteration: what it tidies in the input (dead code, weights
    # read only inside a subgraph) would otherwise change the model at the end of the first iteration and cost a
    # second one that only confirms the fixed point
    tidies_input: ClassVar[bool] = False

    def __init__(self, context: PassContext | None = None) -> None:
        self.context = context or PassContext()

    @classmethod
    def description(cls) -> str:
        """The first line of the pass's docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def call(self, model: Model) -> PassResult:
        """Run on `model` in place; keep run state in locals, never on self."""
        raise NotImplementedError

    def __call__(self, model: Model) -> PassResult:
        return self.call(model)


_REGISTRY: dict[str, type[Pass]] = {}
_PREFIXED: dict[str, Callable[[str, PassContext], Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make a pass available by its `name` and in its groups."""
    if not cls.name or cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"pass name {cls.name!r} is empty or already registered")
    unknown = set(cls.groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"pass {cls.name}: unknown groups {sorted(unknown)}")
    _REGISTRY[cls.name] = cls
    return cls


def register_prefix(prefix: str, factory: Callable[[str, PassContext], Pass]) -> None:
    """Resolve names `prefix` and `prefix:<sub>` through `factory(sub, context)` (e.g. onnxoptimizer's passes)."""
    _PREFIXED[prefix] = factory


def registered_passes() -> dict[str, type[Pass]]:
    """Every registered pass class by name, sorted."""
    return dict(sorted(_REGISTRY.items()))


def group_members(group: str) -> list[str]:
    """Pass names in a group, in registration order (which is the order they run)."""
    return [name for name, cls in _REGISTRY.items() if group in cls.groups]


def expand_pipeline(spec: str | Sequence[str]) -> list[str]:
    """'fuse,fold' or ['fuse', 'fold'] → the list of pass names; unknown names raise UnknownPassError."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    names: list[str] = []
    for item in items:
        if not item:
            continue
        if item in GROUPS:
            names.extend(group_members(item))
        elif item in _REGISTRY or item.split(":", 1)[0] in _PREFIXED:
            names.append(item)
        else:
            valid = ", ".join([*GROUPS, *_REGISTRY, *(f"{p}[:<pass>]" for p in _PREFIXED)])
            raise UnknownPassError(f"unknown pass {item!r}; valid names: {valid} (see `onnxopt passes`)")
    return names


def make_pass(name: str, context: PassContext) -> Pass:
    """Instantiate a registered (or prefixed) pass."""
    if name in _REGISTRY:
        return _REGISTRY[name](context)
    prefix, _, sub = name.partition(":")
    if prefix in _PREFIXED:
        return _PREFIXED[prefix](sub, context)
    raise UnknownPassError(f"unknown pass {name!r}; run `onnxopt passes` for the list")


# ---- statistics and instruments -------------------------------------------------------------
@dataclass
class PassStats:
    """Per-pass totals over a pipeline run.

    `runs` counts every application; `skipped` those among them that were not executed because the model had not
    changed since the pass last found nothing to do (passes are deterministic, so it would again find nothing).
    """

    runs: int = 0
    changed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    nodes_added: int = 0
    nodes_removed: int = 0
    initializer_bytes_before: int = 0
    initializer_bytes_after: int = 0
    counters: dict[str, int] = field(default_factory=dict)


@dataclass
class PassRecord:
    """One application of a pass in the pipeline (the history used for bisection)."""

    name: str
    iteration: int
    modified: bool


class Instrument:
    """Hooks around each pass application; override what you need."""

    def before_pass(self, name: str, model: Model) -> None:
        """Called before a pass runs."""

    def after_pass(self, name: str, model: Model, result: PassResult) -> None:
        """Called after a pass returned."""


class LintAfterEachPass(Instrument):
    """Run ir.lint after every pass (tests use it); a broken invariant names the pass."""

    def after_pass(self, name: str, model: Model, result: PassResult) -> None:
        """Lint the model, naming the pass on failure."""
        try:
            lint(model)
        except Exception as exc:
            raise PassError(f"{name} left the IR inconsistent: {exc}", pass_name=name) from exc


class DumpAfterEachPass(Instrument):
    """Save the model after every pass that changed it into a directory, numbered."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.count = 0

    def after_pass(self, name: str, model: Model, result: PassResult) -> None:
        """Write `NNN_<pass>.onnx` when the pass changed the model."""
        if result.modified:
            self.count += 1
            os.makedirs(self.directory, exist_ok=True)
            save(model, os.path.join(self.directory, f"{self.count:03d}_{name.replace(':', '_')}.onnx"))


def initializer_bytes(model: Model) -> int:
    """Total bytes of initializers in the model, subgraphs included."""
    return census(model)[1]


def node_count(model: Model) -> int:
    """Number of nodes in the model, subgraphs included."""
    return census(model)[0]


def census(model: Model) -> tuple[int, int]:
    """Nodes and initializer bytes in the model, subgraphs included, in one walk."""
    graphs = model.graph.all_graphs()
    return sum(len(g) for g in graphs), sum(v.const_value.nbytes for g in graphs for v in g.initializers.values())


def _revision(model: Model) -> tuple[object, int]:
    """Identifies the model's state: equal while nothing was edited (a rebuilt graph is a new state)."""
    return model.graph, model.graph.revision


class _Run:
    """State of one pipeline run shared by its pass applications."""

    def __init__(self, model: Model, transactional: bool) -> None:
        self.stats: dict[str, PassStats] = {}
        self.history: list[PassRecord] = []
        self.checkpoint = _Checkpoint(model) if transactional else None
        self.idle: dict[Pass, tuple[object, int]] = {}  # pass → the state in which it last found nothing to do
        self._census_state: tuple[object, int] | None = None
        self._census = (0, 0)

    def census(self, model: Model) -> tuple[int, int]:
        """census(model), taken again only when the model changed since the last one."""
        state = _revision(model)
        if state != self._census_state:
            self._census_state, self._census = state, census(model)
        return self._census


@dataclass
class PipelineResult:
    """The optimized model, per-pass statistics, and the sequence of pass applications."""

    model: Model
    stats: dict[str, PassStats]
    history: list[PassRecord]
    iterations: int
    converged: bool
    explanations: list[str] = field(default_factory=list)
    verification: object = None  # a verify.VerifyReport when verification ran
    excluded_passes: list[str] = field(default_factory=list)


class PassManager:
    """Runs a pipeline of passes to a fixed point, then dead-code elimination and a topological-order check."""

    def __init__(
        self,
        pipeline: str | Sequence[str] = DEFAULT_PIPELINE,
        context: PassContext | None = None,
        max_iterations: int = 8,
        instruments: Iterable[Instrument] = (),
        transactional: bool = True,
    ) -> None:
        self.context = context or PassContext()
        self.names = expand_pipeline(pipeline)
        self.passes = [make_pass(name, self.context) for name in self.names]
        self.final = [make_pass(name, self.context) for name in group_members("dce")]
        self.max_iterations = max_iterations
        self.instruments = list(instruments)
        self.transactional = transactional

    def run(self, model: Model) -> PipelineResult:
        """Optimize `model` in place and return it with statistics."""
        run = _Run(model, self.transactional)
        converged = False
        iteration = 0
        # dead-code elimination runs inside every iteration too: a dead reader can block a fusion
        steps = list(zip(self.names, self.passes))
        steps += [(p.name, p) for p in self.final if p.name not in self.names]
        if self.passes:
            for name, pass_ in steps:
                if pass_.tidies_input:
                    self._apply(name, pass_, model, run, 1)
        while iteration < self.max_iterations and self.passes:
            iteration += 1
            changed = False
            for name, pass_ in steps:
                changed |= self._apply(name, pass_, model, run, iteration)
            if not changed:
                converged = True
                break
        if not converged and self.passes:
            logger.warning("pipeline did not reach a fixed point in %d iterations", self.max_iterations)
        if not self.passes:
            for pass_ in self.final:
                self._apply(pass_.name, pass_, model, run, iteration + 1)
        revision = model.graph.revision
        for graph in model.graph.all_graphs():
            graph.sort()
        keep_inferred_types(model, revision)  # reordering changes no value's type
        lint(model)
        return PipelineResult(model, run.stats, run.history, iteration, converged or not self.passes)

    def _apply(self, name: str, pass_: Pass, model: Model, run: _Run, iteration: int) -> bool:
        entry = run.stats.setdefault(name, PassStats())
        history, checkpoint = run.history, run.checkpoint
        state = _revision(model)
        count, bytes_before = run.census(model)
        if entry.runs == 0:
            entry.initializer_bytes_before = bytes_before
        if run.idle.get(pass_) == state:
            entry.runs += 1
            entry.skipped += 1
            history.append(PassRecord(name, iteration, False))
            return False
        root = model.graph
        added, removed = root.nodes_added, root.nodes_removed
        for instrument in self.instruments:
            instrument.before_pass(name, model)
        start = time.perf_counter()
        try:
            result = pass_.call(model)
            for instrument in self.instruments:
                instrument.after_pass(name, model, result)
        except Exception as exc:
            if checkpoint is not None:
                checkpoint.roll_back(model)
            if isinstance(exc, OnnxoptError):  # a user mistake found by a pass (e.g. a bad --input-shape)
                raise
            done = [r.name for r in history if r.modified]
            node = _failing_node(exc)
            where = f" on node {node.name!r} ({node.op_type})" if node is not None else ""
            raise PassError(
                f"{name} failed{where} after [{', '.join(done)}]: {type(exc).__name__}: {exc}",
                pass_name=name, node_name=node.name if node is not None else "",
            ) from exc
        entry.seconds += time.perf_counter() - start
        entry.runs += 1
        entry.changed += int(result.modified)
        if model.graph is root:
            entry.nodes_added += root.nodes_added - added
            entry.nodes_removed += root.nodes_removed - removed
        else:  # the pass rebuilt the graph (e.g. a round trip through onnxoptimizer): count the net change
            delta = run.census(model)[0] - count
            entry.nodes_added += max(delta, 0)
            entry.nodes_removed += max(-delta, 0)
        entry.initializer_bytes_after = run.census(model)[1] if result.modified else bytes_before
        for key, value in result.counters.items():
            entry.counters[key] = entry.counters.get(key, 0) + value
        history.append(PassRecord(name, iteration, result.modified))
        if result.modified:
            model.graph.mark_changed()  # also covers edits made around the IR's mutators
            if pass_.removes_only_unread and model.graph is root:
                keep_inferred_types(model, state[1])
        else:
            run.idle[pass_] = _revision(model)
        if checkpoint is not None and _revision(model) != state:
            checkpoint.applied.append(pass_)
        return result.modified


class _Checkpoint:
    """The model at the start of the run plus the passes that changed it since.

    Rolling back restores the copy and replays those passes (they are deterministic), which gives the state
    just before a failing pass for the price of one copy per run instead of one per pass.
    """

    def __init__(self, model: Model) -> None:
        self.snapshot = model.clone()
        self.applied: list[Pass] = []

    def roll_back(self, model: Model) -> None:
        """Make `model` what it was before the pass that is failing now."""
        model.restore(self.snapshot)
        self.snapshot = model.clone()
        replayed: list[Pass] = []
        try:
            for pass_ in self.applied:
                pass_.call(model)
                replayed.append(pass_)
        except Exception:  # a pass that does not replay: settle for the state at the start of the run
            logger.warning("could not replay %s after a failure; the model is as it was before the pipeline",
                           self.applied[len(replayed)].name)
            model.restore(self.snapshot)


def _failing_node(exc: BaseException) -> Node | None:
    for frame, _ in reversed(list(traceback.walk_tb(exc.__traceback__))):
        node = frame.f_locals.get("node")
        if isinstance(node, Node):
            return node
    return None
