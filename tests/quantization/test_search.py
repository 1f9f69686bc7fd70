"""The accuracy search's choice of how many ranked nodes to keep float, on a table of known SQNRs."""
from __future__ import annotations

import math

from onnxopt.quantization.search import Built, search_accuracy

UNITS = [f"n{i}" for i in range(12)]


class TableEvaluator:
    """Scores a candidate (here: the frozenset of nodes it keeps float) from a fixed noise table.

    Noise powers do not add: the total is `scale` × their sum, so the additive estimate misjudges the count."""

    def __init__(self, noise: dict[str, float], scale: float) -> None:
        self.noise, self.scale, self.measured = noise, scale, []

    def sqnr(self, candidate, limit=None, bound=False) -> float:
        self.measured.append(candidate)
        total = self.scale * sum(v for k, v in self.noise.items() if k not in candidate)
        return math.inf if total == 0 else -10 * math.log10(total)

    def noisiest(self, candidate, count):
        return TableEvaluator(self.noise, 1.0)


def build(keep: frozenset[str]) -> Built:
    return Built(keep, [u for u in UNITS if u not in keep], [])


def run(scale: float, target: float):
    noise = {u: 10 ** (-(30 + i) / 10) for i, u in enumerate(UNITS)}  # n0 noisiest
    evaluator = TableEvaluator(noise, scale)
    best, keep, steps = search_accuracy(build, build(frozenset()), frozenset(), evaluator, target)
    return evaluator, best, keep, steps


def fewest(scale: float, target: float) -> int:
    evaluator, *_ = run(scale, target)
    return next(k for k in range(len(UNITS) + 1) if evaluator.sqnr(frozenset(UNITS[:k])) >= target)


def test_search_keeps_the_shortest_prefix_when_the_estimate_overshoots():
    # the real total noise is 10× smaller than the additive estimate: the estimate asks for too many nodes
    evaluator, best, keep, steps = run(scale=0.1, target=36.0)
    assert keep == frozenset(UNITS[: fewest(0.1, 36.0)])
    assert len(keep) < len(steps[0].nodes)  # the first measured count was too high and was bisected down
    assert evaluator.sqnr(best.model) >= 36.0


def test_search_doubles_when_the_estimate_undershoots():
    evaluator, best, keep, steps = run(scale=10.0, target=33.0)
    assert keep == frozenset(UNITS[: fewest(10.0, 33.0)])
    assert len(keep) > len(steps[0].nodes)
    assert all(s.value >= 33.0 or len(s.nodes) < len(keep) for s in steps)  # every count below the answer missed


def test_search_keeps_everything_float_when_nothing_less_reaches_the_target():
    evaluator, best, keep, steps = run(scale=1e6, target=60.0)
    assert keep == frozenset(UNITS) and best.compute == []


def test_search_measures_nothing_when_the_model_already_reaches_the_target():
    evaluator, best, keep, steps = run(scale=1.0, target=10.0)
    assert keep == frozenset() and steps == []
