"""The pieces of ``annotate`` on their own: reading a grid score from a reply, the labelling template and its hash,
the prepared-row lookup (row-group reads, LRU cache, path-mode images), the image store and the annotation files."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sophiavl.data_prep.imagecheck import ImageRejected
from sophiavl.data_prep.schema import row_schema
from sophiavl.data_prep.trm_build.annotation import Annotation
from sophiavl.data_prep.trm_build.annotation_files import AnnotationWriter, file_tag, pair_key, scan_done
from sophiavl.data_prep.trm_build.image_store import ImageStore
from sophiavl.data_prep.trm_build.labelling import GRID_CHOICES, label_template, parse_label
from sophiavl.data_prep.trm_build.prepared_rows import PreparedRows, RowNotFound
from sophiavl.rewards.collect import RolloutRecord
from sophiavl.rewards.trm.prompt import load_template
from sophiavl_testing.annotate_helpers import png, synthetic_prepared


@pytest.mark.parametrize(
    "reply, score",
    [
        ("0.7", 0.7),
        (" 1 \n", 1.0),
        ("0", 0.0),
        ("1.0", 1.0),
        ("0.70", 0.7),
        ("<answer>0.3</answer>", 0.3),
        ("The reasoning has minor errors. Score: 0.8", 0.8),  # the last number
        ("Step 2 is wrong, step 5 too. 0.4", 0.4),
    ],
)
def test_parse_label_reads_grid_scores(reply, score):
    assert parse_label(reply) == (score, None)


@pytest.mark.parametrize(
    "reply, kind",
    [
        ("0.75", "off_grid"),
        ("7", "off_grid"),
        ("-0.1", "off_grid"),
        ("70%", "off_grid"),
        ("1.1", "off_grid"),
        ("very good reasoning", "unparsable"),
        ("", "unparsable"),
        (None, "unparsable"),
    ],
)
def test_parse_label_never_turns_a_bad_reply_into_a_score(reply, kind):
    score, error = parse_label(reply)
    assert score is None and error.startswith(kind + ": ")


def test_grid_choices_are_the_eleven_grid_strings():
    assert GRID_CHOICES == ("0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0")


def test_the_packaged_label_template_is_the_papers_and_its_hash_is_of_its_bytes(tmp_path):
    packaged = label_template()
    text = open(packaged.path, encoding="utf-8").read()
    assert packaged.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    for phrase in ("Logical soundness", "Correct reasoning", "Error identification", "Language consistency"):
        assert phrase in text
    assert "Redundancy" in text and "Be strict" in text and "score alone" in text
    template = load_template(packaged.path)  # the judge client reads it
    assert "{question}" in template.user and "{response}" in template.user and template.system
    own = tmp_path / "mine.txt"
    own.write_text("Rate it.\n---\nQ: {question}\nA: {response}\n")
    assert label_template(str(own)).sha256 == hashlib.sha256(own.read_bytes()).hexdigest() != packaged.sha256


def test_prepared_rows_reads_one_row_group_at_a_time_with_a_small_cache(tmp_path):
    prepared = synthetic_prepared(tmp_path / "prep", 10, group_rows=3)  # groups: 0-2, 3-5, 6-8, 9
    rows = PreparedRows(prepared, cache_groups=2)
    assert len(rows) == 10 and rows.group_reads == 0  # the index reads extra_info only
    assert rows.get("train", 4).images == [png(4)] and rows.get("train", 4).problem_id == "p4"
    rows.get("train", 5)  # same group: cached
    assert rows.group_reads == 1
    rows.get("train", 0)
    rows.get("train", 9)  # a third group evicts group 3-5 (least recently used)
    rows.get("train", 1)
    assert rows.group_reads == 3
    rows.get("train", 3)
    assert rows.group_reads == 4
    with pytest.raises(RowNotFound):
        rows.get("val", 0)
    with pytest.raises(RowNotFound):
        rows.get("train", 10)


def test_prepared_rows_reads_path_mode_images_and_refuses_duplicate_ids(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(png(7))
    schema = row_schema("path")
    row = {
        "data_source": "d",
        "prompt": [],
        "images": [{"image": str(image)}],
        "ability": "x",
        "reward_model": {"style": "rule", "ground_truth": "1"},
        "extra_info": {"split": "val", "index": 0, "problem_id": "", "problem_type": "x", "data_source": "d",
                       "question": "q", "answer": "1", "options": []},
    }  # fmt: skip
    (tmp_path / "prep").mkdir()
    pq.write_table(pa.Table.from_pylist([row], schema=schema), tmp_path / "prep" / "val-00000.parquet")
    assert PreparedRows(tmp_path / "prep").get("val", 0).images == [png(7)]
    pq.write_table(pa.Table.from_pylist([row], schema=schema), tmp_path / "prep" / "val-00001.parquet")
    with pytest.raises(ValueError, match="appears twice"):
        PreparedRows(tmp_path / "prep")
    with pytest.raises(FileNotFoundError):
        PreparedRows(tmp_path / "empty")


def test_image_store_writes_each_image_once_by_content_hash(tmp_path):
    store = ImageStore(tmp_path)
    name = store.put(png(1))
    assert name == hashlib.sha256(png(1)).hexdigest() + ".png"
    assert store.put(png(1)) == name and store.written == 1 and store.reused == 1
    assert (tmp_path / "images" / name).read_bytes() == png(1)
    with pytest.raises(ImageRejected):
        store.put(png(2)[:30])  # truncated
    with pytest.raises(ImageRejected):
        store.put(b"")
    assert [p.name for p in (tmp_path / "images").iterdir()] == [name]


def test_annotation_writer_starts_a_fresh_line_after_a_torn_one_and_the_scan_counts_it(tmp_path):
    (tmp_path / "annotations-j.jsonl").write_bytes(
        b'{"rollout": {"rid": "a"}, "judge_model": "j"}\n{"rollout": {"rid": "b"'
    )
    writer = AnnotationWriter(tmp_path, "j")
    writer.write('{"rollout": {"rid": "c"}, "judge_model": "j"}\n')
    writer.close()
    scan = scan_done(tmp_path)
    assert scan.lines == 2 and scan.keys == {pair_key("a", "j"), pair_key("c", "j")}
    assert scan.rejected == {"bad_line": 1}  # the torn line, now ended by a newline, no longer parses
    assert pair_key("a", "j") != pair_key("a", "k")
    assert file_tag("Qwen/Qwen2.5-VL-72B-Instruct") == "Qwen--Qwen2.5-VL-72B-Instruct"
    assert file_tag("a b:c") == "a_b_c"


def test_an_annotation_line_holds_the_rollout_as_its_own_line_does():
    record = RolloutRecord("a", "train", 1, "p", "d", "numerical", "q?", "r", float("nan"), 3, "g", "grpo")
    line = Annotation(record, "judge", "h", ["x.png"], [0.1], ["0.1"], [None]).to_line()
    own = json.loads(record.to_line())
    own.pop("v")
    data = json.loads(line)
    assert list(data) == ["v", "rollout", "judge_model", "prompt_sha256", "images", "scores", "raw", "errors",
                          "row_error"]  # fmt: skip
    assert list(data["rollout"].items()) == list(own.items()) and data["rollout"]["outcome"] is None
    assert Annotation.from_line(line).rollout.rid == "a"
