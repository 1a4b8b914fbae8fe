"""The rule-based outcome reward Ro: ``pkg://sophiavl.rewards.outcome`` names :func:`compute_score` for verl.

``score`` (the function verl calls, format gate, answer extraction), ``scorers`` (one scorer per problem type),
``bounded`` (the helper-process pool that bounds a scorer's time), ``metrics`` (the step's scorer-failure metrics).
"""

from sophiavl.rewards.outcome.score import compute_score

__all__ = ["compute_score"]
