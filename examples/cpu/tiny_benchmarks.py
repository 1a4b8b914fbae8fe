"""Tiny copies of the seven benchmarks in their real hub schemas, made offline: shared by the eval unit tests and
`make demo-eval` (examples/cpu/demo_eval.py); imported as ``tiny_benchmarks`` (a sibling of the demos, on pytest's
path in the tests).

``build_all(root)`` writes ``root/<benchmark>/`` as ``huggingface-cli download --repo-type dataset`` lays the hub
repository out: parquet shards written by ``datasets`` (images as the ``Image`` struct ``{bytes, path}``), under the
repository's file names, a ``README.md`` with ``configs`` where the repository has one, and shards of other splits
beside the evaluated one. Each benchmark has a few rows; some are built to be rejected (``REJECTS``).
"""

from __future__ import annotations

import io
from pathlib import Path

#: benchmark -> hub id of the repository the fixture copies
HUB_IDS = {
    "mathvista": "AI4Math/MathVista",
    "mathverse": "AI4Math/MathVerse",
    "mmmu": "lmms-lab/MMMU",
    "mme": "lmms-lab/MME",
    "chartqa": "HuggingFaceM4/ChartQA",
    "mmbench": "lmms-lab/MMBench",
    "mmstar": "Lin-Chen/MMStar",
}
#: benchmark -> (rows in the evaluated split, rows written, {reason: rows rejected})
EXPECTED = {
    "mathvista": (5, 3, {"answer_not_an_option": 1, "image_missing": 1}),
    "mathverse": (4, 4, {}),
    "mmmu": (5, 3, {"bad_options": 1, "image_missing": 1}),
    "mme": (5, 4, {"unknown_category": 1}),
    "chartqa": (4, 3, {"missing_answer": 1}),
    "mmbench": (4, 4, {}),
    "mmstar": (3, 3, {}),
}
COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "white"]


def png(color: str = "red", size: tuple[int, int] = (56, 56)) -> bytes:
    """A small solid PNG (56 x 56 px by default)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _img(i: int) -> dict:
    return {"bytes": png(COLORS[i % len(COLORS)]), "path": f"{i}.png"}


def _write(rows: list[dict], features, path: Path) -> None:
    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features).to_parquet(str(path))


def _card(path: Path, configs: str) -> None:
    card = f"---\nconfigs:\n{configs}---\n\n# fixture copy (examples/cpu/tiny_benchmarks.py)\n"
    path.write_text(card, encoding="utf-8")


def mathvista(root: Path) -> None:
    from datasets import Features, Image, Sequence, Value

    meta = {k: Value("string") for k in ("category", "context", "grade", "language", "source", "split", "task")}
    meta["skills"] = Sequence(Value("string"))
    features = Features({
        "pid": Value("string"), "question": Value("string"), "image": Value("string"), "decoded_image": Image(),
        "choices": Sequence(Value("string")), "unit": Value("string"), "precision": Value("float64"),
        "answer": Value("string"), "question_type": Value("string"), "answer_type": Value("string"),
        "metadata": meta, "query": Value("string"),
    })  # fmt: skip

    def row(pid, qtype, atype, answer, choices=None, precision=None, unit=None, image=True, task="", skills=()):
        q = f"Question {pid}: what does the figure show?"
        hint = "Hint: Please answer the question and provide the correct option letter at the end.\n"
        query = hint + q + ("\nChoices:\n" + "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(choices))
                            if choices else "")  # fmt: skip
        return {
            "pid": pid, "question": q, "image": f"images/{pid}.jpg", "decoded_image": _img(int(pid)) if image else None,
            "choices": choices, "unit": unit, "precision": precision, "answer": answer, "question_type": qtype,
            "answer_type": atype, "query": query,
            "metadata": {"category": "math-targeted-vqa", "context": "synthetic scene", "grade": "high school",
                         "language": "english", "source": "fixture", "split": "testmini", "task": task,
                         "skills": list(skills)},
        }  # fmt: skip

    rows = [
        row("1", "multi_choice", "text", "4", ["3", "4", "5"], task="textbook question answering",
            skills=["arithmetic reasoning"]),
        row("2", "free_form", "integer", "12", task="math word problem", skills=["arithmetic reasoning"]),
        row("3", "free_form", "float", "1.5", precision=1.0, unit="cm", task="geometry problem solving",
            skills=["scientific reasoning"]),
        row("4", "multi_choice", "text", "7", ["3", "4", "5"], task="textbook question answering"),
        row("5", "free_form", "integer", "2", image=False, task="math word problem"),
    ]  # fmt: skip
    _write(rows, features, root / "data" / "testmini-00000-of-00001-fixture.parquet")
    _write([row("6", "free_form", "integer", "", task="x")], features,
           root / "data" / "test-00000-of-00001-fixture.parquet")  # fmt: skip


def mathverse(root: Path) -> None:
    from datasets import Features, Image, Value

    features = Features({
        "sample_index": Value("string"), "problem_index": Value("string"), "problem_version": Value("string"),
        "question": Value("string"), "image": Image(), "answer": Value("string"), "question_type": Value("string"),
        "metadata": {"split": Value("string"), "source": Value("string"), "subject": Value("string"),
                     "subfield": Value("string")},
        "query_wo": Value("string"), "query_cot": Value("string"), "question_for_eval": Value("string"),
    })  # fmt: skip
    mc = "In the figure, find the angle ABC.\nChoices:\nA:30\nB:60\nC:90\nD:120"

    def row(i, problem, version, question, answer, qtype):
        return {"sample_index": str(i), "problem_index": str(problem), "problem_version": version,
                "question": question, "image": _img(i), "answer": answer, "question_type": qtype,
                "metadata": {"split": "testmini", "source": "fixture", "subject": "plane geometry",
                             "subfield": "angle"},
                "query_wo": question, "query_cot": question, "question_for_eval": question}  # fmt: skip

    rows = [
        row(1, 1, "Text Dominant", mc, "B", "multi-choice"),
        row(2, 1, "Vision Only", "According to the question shown in the image, answer with the option letter.",
            "B", "multi-choice"),
        row(3, 2, "Text Lite", "Find the ratio of the two areas.", "\\frac{1}{2}", "free-form"),
        row(4, 3, "Vision Intensive", "How long is side AB?", "5", "free-form"),
    ]  # fmt: skip
    _write(rows, features, root / "testmini.parquet")
    _write(rows[:1], features, root / "testmini_text_only.parquet")
    _card(
        root / "README.md",
        "- config_name: testmini\n  data_files:\n  - split: testmini\n    path: testmini.parquet\n"
        "- config_name: testmini_text_only\n  data_files:\n  - split: testmini\n    path: testmini_text_only.parquet\n",
    )


def mmmu(root: Path) -> None:
    from datasets import Features, Image, Value

    columns = {"id": Value("string"), "question": Value("string"), "options": Value("string"),
               "explanation": Value("string")}  # fmt: skip
    columns |= {f"image_{k}": Image() for k in range(1, 8)}
    columns |= {"img_type": Value("string"), "answer": Value("string"), "topic_difficulty": Value("string"),
                "question_type": Value("string"), "subfield": Value("string")}  # fmt: skip
    features = Features(columns)

    def row(rid, question, options, answer, qtype, images):
        r = {
            "id": rid,
            "question": question,
            "options": options,
            "explanation": "",
            "img_type": "['Diagrams']",
            "answer": answer,
            "topic_difficulty": "Easy",
            "question_type": qtype,
            "subfield": "fixture",
        }
        r |= {f"image_{k}": (_img(k) if k in images else None) for k in range(1, 8)}
        return r  # fmt: skip

    rows = [
        row("validation_Art_Theory_1", "Which work <image 1> is closest in style to <image 2>?",
            "['<image 2>', 'an oil painting', 'a fresco']", "A", "multiple-choice", {1, 2}),
        row("validation_Math_2", "<image 1> What is x in the figure?", "[]", "3.5", "open", {1}),
        row("validation_Math_3", "<image 1> Which color is the square?", "[]", "['blue', 'navy']", "open", {1}),
        row("validation_Physics_4", "<image 1> Which force is larger?", "not a list", "A", "multiple-choice", {1}),
        row("validation_Physics_5", "<image 1> and <image 2>: which is heavier?", "['left', 'right']", "B",
            "multiple-choice", {1}),
    ]  # fmt: skip
    _write(rows, features, root / "data" / "validation-00000-of-00001.parquet")
    _write(rows[:1], features, root / "data" / "dev-00000-of-00001.parquet")


def mme(root: Path) -> None:
    from datasets import Features, Image, Value

    features = Features({"question_id": Value("string"), "image": Image(), "question": Value("string"),
                         "answer": Value("string"), "category": Value("string")})  # fmt: skip

    def row(qid, i, question, answer, category):
        return {"question_id": qid, "image": _img(i), "question": question + " Please answer yes or no.",
                "answer": answer, "category": category}  # fmt: skip

    rows = [
        row("artwork/1.jpg", 1, "Is this artwork by a Dutch painter?", "Yes", "artwork"),
        row("artwork/1.jpg", 1, "Is this artwork by a French painter?", "No", "artwork"),
        row("code_reasoning/2.png", 2, "Does the code print 3?", "Yes", "code_reasoning"),
        row("code_reasoning/2.png", 2, "Does the code print 4?", "No", "code_reasoning"),
        row("misc/3.png", 3, "Is there a cat?", "Yes", "not_a_subtask"),
    ]
    _write(rows[:3], features, root / "data" / "test-00000-of-00002.parquet")
    _write(rows[3:], features, root / "data" / "test-00001-of-00002.parquet")


def chartqa(root: Path) -> None:
    from datasets import ClassLabel, Features, Image, Sequence, Value

    features = Features({"image": Image(), "query": Value("string"), "label": Sequence(Value("string")),
                         "human_or_machine": ClassLabel(names=["human", "machine"])})  # fmt: skip
    rows = [
        {"image": _img(1), "query": "What is the highest value in the chart?", "label": ["45"], "human_or_machine": 0},
        {"image": _img(2), "query": "Which year had the lowest sales?", "label": ["2019"], "human_or_machine": 1},
        {"image": _img(3), "query": "Is the red bar taller than the blue one?", "label": ["Yes"],
         "human_or_machine": 0},
        {"image": _img(4), "query": "What is the unlabeled value?", "label": [], "human_or_machine": 1},
    ]  # fmt: skip
    _write(rows, features, root / "data" / "test-00000-of-00001.parquet")
    _write(rows[:1], features, root / "data" / "val-00000-of-00001.parquet")


def mmbench(root: Path) -> None:
    from datasets import Features, Image, Value

    names = ("question", "hint", "A", "B", "C", "D", "answer", "category", "source", "l2-category", "comment", "split")
    features = Features({"index": Value("int64"), **{n: Value("string") for n in names[:8]}, "image": Image(),
                         **{n: Value("string") for n in names[8:]}})  # fmt: skip

    def row(index, options, answer, category, hint=None):
        opts = dict(zip("ABCD", list(options) + [None] * (4 - len(options)), strict=True))
        return {"index": index, "question": "Which animal is shown?", "hint": hint, **opts, "answer": answer,
                "category": category, "image": _img(index % 7), "source": "fixture",
                "l2-category": "attribute_reasoning", "comment": None, "split": "dev"}  # fmt: skip

    rows = [
        row(1, ["cat", "dog", "bird", "fish"], "A", "image_topic"),
        row(1_000_001, ["dog", "bird", "fish", "cat"], "D", "image_topic"),
        row(2, ["up", "down"], "B", "spatial_relationship", hint="The arrow points down."),
        row(1_000_002, ["down", "up"], "A", "spatial_relationship", hint="The arrow points down."),
    ]
    _write(rows, features, root / "en" / "dev-00000-of-00001.parquet")
    _write(rows[:1], features, root / "en" / "test-00000-of-00001.parquet")
    _write(rows[:1], features, root / "cn" / "dev-00000-of-00001.parquet")


def mmstar(root: Path) -> None:
    from datasets import Features, Image, Value

    features = Features({"index": Value("int64"), "question": Value("string"), "image": Image(),
                         "answer": Value("string"), "category": Value("string"), "l2_category": Value("string"),
                         "meta_info": {"source": Value("string"), "split": Value("string"),
                                       "image_path": Value("string")}})  # fmt: skip

    def row(index, question, answer, category):
        return {"index": index, "question": question, "image": _img(index), "answer": answer, "category": category,
                "l2_category": "fixture", "meta_info": {"source": "fixture", "split": "val",
                                                        "image_path": f"images/{index}.jpg"}}  # fmt: skip

    rows = [
        row(0, "What is shown?\nOptions: A: a cat, B: a dog, C: a bird, D: a fish", "A", "coarse perception"),
        row(1, "What is 2 + 3?\nOptions: A: 4, B: 6, C: 5, D: 7", "C", "math"),
        row(2, "How many sides has a square?\nOptions: A: 3, B: 4, C: 5", "B", "math"),
    ]
    _write(rows, features, root / "mmstar.parquet")
    (root / "MMStar.tsv").write_text("index\tquestion\n0\tnot read\n", encoding="utf-8")
    _card(root / "README.md", "- config_name: val\n  data_files:\n  - split: val\n    path: mmstar.parquet\n")


BUILDERS = {"mathvista": mathvista, "mathverse": mathverse, "mmmu": mmmu, "mme": mme, "chartqa": chartqa,
            "mmbench": mmbench, "mmstar": mmstar}  # fmt: skip


def build(benchmark: str, folder: Path | str) -> Path:
    """Writes the fixture copy of ``benchmark`` into ``folder``; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    BUILDERS[benchmark](folder)
    return folder


def build_all(root: Path | str) -> dict[str, Path]:
    """``root/<benchmark>/`` for each of the seven benchmarks; returns benchmark -> folder."""
    return {name: build(name, Path(root) / name) for name in BUILDERS}


def lay_out_hub_cache(cache: Path | str, repo_id: str, folder: Path | str, commit: str = "0" * 39 + "1") -> Path:
    """Copies ``folder`` into a hub cache as ``huggingface_hub`` keeps a dataset snapshot
    (``datasets--OWNER--NAME/refs/main`` naming ``commit``, files under ``snapshots/<commit>/``); returns it."""
    import shutil

    repo = Path(cache) / ("datasets--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    return snapshot
