"""verl 0.9.1's validation dump, written by verl's own writer from hand-chosen responses: shared by the eval
report tests (tests/eval/test_report.py, tests/eval/test_extract.py)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from sophiavl.eval.compute_score import compute_score
from sophiavl.eval.results import load_prepared


def write_verl_dump(folder: Path, data: Path, responses: dict) -> Path:
    """The dump verl 0.9.1 writes for a validation pass: its own writer, fed what _validate collects (the decoded
    output, the ground truth, the score, and every key compute_score returned)."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    prepared = load_prepared(data)
    inputs, outputs, gts, scores, extra = [], [], [], [], defaultdict(list)
    for key, response in responses.items():
        row = prepared[key]
        result = compute_score(key[0], response, row["ground_truth"], dict(row["extra_info"]))
        inputs.append("prompt text")
        outputs.append(response)
        gts.append(row["ground_truth"])
        scores.append(result["score"])
        extra["reward"].append(result["score"])
        for k, v in result.items():
            extra[k].append(v)
    extra["uid"] = [f"uid-{i}" for i in range(len(inputs))]
    PPOTrainer._write_generations(inputs, outputs, gts, scores, dict(extra), str(folder), 0)
    return folder / "0.jsonl"
