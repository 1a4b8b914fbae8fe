"""Unit tests of the data_prep building blocks, with hand-computed expectations."""

from __future__ import annotations

import hashlib
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sophiavl.data_prep import reader
from sophiavl.data_prep.imagecheck import ImageRejected, probe_image
from sophiavl.data_prep.prompts import build_prompt, build_user_content, strip_media_tokens
from sophiavl.data_prep.records import RecordRejected, extract_answer, parse_record
from sophiavl.data_prep.schema import make_row, row_schema
from sophiavl.data_prep.sources import ImageMissing, ImageStore, PathEscapesRoot, normalize_relpath
from sophiavl.data_prep.split import choose_val_keys, key_hash, split_key
from sophiavl.data_prep.writer import ShardedParquetWriter
from sophiavl_testing.data_prep_helpers import bomb_png, png_bytes

# --- reader ---------------------------------------------------------------------------------------------------


def test_reader_array_and_json_lines_give_the_same_records(tmp_path):
    recs = [{"a": 1}, {"b": [1, 2]}, {"c": "x\ny"}]
    (tmp_path / "a.json").write_text('[\n {"a": 1},\n {"b": [1, 2]},\n {"c": "x\\ny"}\n]\n')
    (tmp_path / "b.jsonl").write_text('{"a": 1}\n\n{"b": [1, 2]}\n{"c": "x\\ny"}\n')
    assert list(reader.iter_records(tmp_path / "a.json")) == recs
    assert list(reader.iter_records(tmp_path / "b.jsonl")) == recs
    (tmp_path / "e.json").write_text("")
    (tmp_path / "f.json").write_text(" [ ] ")
    assert list(reader.iter_records(tmp_path / "e.json")) == []
    assert list(reader.iter_records(tmp_path / "f.json")) == []


def test_reader_skips_a_utf8_bom(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"b": 2}\n')
    (tmp_path / "b.json").write_bytes(b'\xef\xbb\xbf[{"a": 1}]')
    assert list(reader.iter_records(tmp_path / "a.jsonl")) == [{"a": 1}, {"b": 2}]
    assert list(reader.iter_records(tmp_path / "b.json")) == [{"a": 1}]


def test_reader_streams_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "_CHUNK", 5)  # every record and number straddles a refill
    (tmp_path / "a.json").write_text('[{"id": 123456789, "t": "abcdefghij"}, 98765, {"id": 2}]')
    assert list(reader.iter_records(tmp_path / "a.json")) == [{"id": 123456789, "t": "abcdefghij"}, 98765, {"id": 2}]


@pytest.mark.parametrize(
    "text, line, column, offset",
    [
        # '[{"a": 1},\n' is 11 chars; on line 2 ' {"a": 2,,' the second ',' is the 10th char (offset 11 + 9)
        ('[{"a": 1},\n {"a": 2,,}]', 2, 10, 20),
        ('[{"a": 1} {"b": 2}]', 1, 11, 10),  # missing comma: the '{' at offset 10
        ('[{"a": 1},', 1, 11, 10),  # truncated after the comma
        ('[{"a": 1}] x', 1, 12, 11),  # trailing garbage
    ],
)
def test_reader_malformed_array_names_file_line_and_column(tmp_path, text, line, column, offset):
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(reader.JsonInputError) as e:
        list(reader.iter_records(tmp_path / "bad.json"))
    assert (e.value.line, e.value.column, e.value.offset) == (line, column, offset)
    assert "bad.json" in str(e.value) and f"line {line}, column {column}" in str(e.value)


def test_reader_malformed_json_lines_names_the_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a" 3}\n')
    with pytest.raises(reader.JsonInputError) as e:
        list(reader.iter_records(tmp_path / "bad.jsonl"))
    assert (e.value.line, e.value.column) == (3, 6)  # the '3' where ':' was expected
    assert e.value.offset == 18 + 5


# --- paths and image sources ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, norm",
    [("./Math/a.png", "Math/a.png"), ("Math//x/../a.png", "Math/a.png"), ("Math\\a.png", "Math/a.png")],
)
def test_normalize_relpath(raw, norm):
    assert normalize_relpath(raw) == norm


@pytest.mark.parametrize("raw", ["/etc/passwd", "../x.png", "Math/../../x.png", "C:/x.png", "\\\\host\\x.png"])
def test_normalize_relpath_rejects_escapes(raw):
    with pytest.raises(PathEscapesRoot):
        normalize_relpath(raw)


def test_normalize_relpath_rejects_empty():
    with pytest.raises(ImageMissing):
        normalize_relpath("  ")


def test_image_store_finds_unpacked_files_and_zip_members(tmp_path):
    (tmp_path / "Math").mkdir()
    (tmp_path / "Math" / "a.png").write_bytes(b"unpacked")
    with zipfile.ZipFile(tmp_path / "Chart.zip", "w") as zf:
        zf.writestr("Chart/b.png", b"full-path member")
        zf.writestr("c.png", b"member without the top folder")
    with zipfile.ZipFile(tmp_path / "Math.zip", "w") as zf:
        zf.writestr("Math/a.png", b"zipped copy")
        zf.writestr("Math/z.png", b"zipped only")
    store = ImageStore(tmp_path)
    assert store.read(store.locate("./Math/a.png")) == b"unpacked"  # unpacked wins over the archive
    assert store.read(store.locate("./Math/z.png")) == b"zipped only"
    ref = store.locate("Chart/b.png")
    assert ref.archive.endswith("Chart.zip") and ref.location == "Chart/b.png"
    assert store.read(ref) == b"full-path member" and store.size(ref) == 16
    assert store.read(store.locate("./Chart/c.png")) == b"member without the top folder"
    with pytest.raises(ImageMissing):
        store.locate("Chart/none.png")
    store.close()


def test_image_store_rejects_symlinks_out_of_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "secret.png"
    (root / "Math").mkdir(parents=True)
    outside.write_bytes(png_bytes())
    (root / "Math" / "link.png").symlink_to(outside)
    with pytest.raises(PathEscapesRoot):
        ImageStore(root).locate("Math/link.png")


# --- image checks ---------------------------------------------------------------------------------------------


def test_probe_image_reads_the_header():
    info = probe_image(png_bytes(4, 3))
    assert (info.format, info.width, info.height) == ("PNG", 4, 3)


def test_probe_image_pixel_limit_is_inclusive():
    assert probe_image(png_bytes(10, 10), max_pixels=100).width == 10
    with pytest.raises(ImageRejected) as e:
        probe_image(png_bytes(10, 10), max_pixels=99)
    assert e.value.reason == "image_too_large"


def test_probe_image_rejects_a_bomb_from_its_header_alone():
    with pytest.raises(ImageRejected) as e:
        probe_image(bomb_png(100_000, 100_000))  # 1e10 px, never allocated
    assert e.value.reason == "image_too_large"


@pytest.mark.parametrize("data", [b"", b"not an image at all", png_bytes()[:30], b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_probe_image_rejects_unreadable_bytes(data):
    with pytest.raises(ImageRejected) as e:
        probe_image(data)
    assert e.value.reason == "image_unreadable"


# --- records, answers, prompts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "solution, answer",
    [
        ("<answer> 42 </answer>", "42"),
        ("<answer>B</answer> trailing <answer>C</answer>", "B"),
        ("<answer>a\nb</answer>", "a\nb"),
        ("3.5", "3.5"),
        ("<answer>x", "x"),
        (7, "7"),
        ("<answer>  </answer>", ""),
        (None, ""),
        (True, ""),
        (["A"], ""),
    ],
)
def test_extract_answer(solution, answer):
    assert extract_answer(solution) == answer


def _rec(**kw):
    rec = {
        "problem_id": 7,
        "problem": "<image>How many?",
        "data_type": "image",
        "problem_type": "numerical",
        "solution": "<answer>3</answer>",
        "path": "./Math/a.png",
        "data_source": "src",
    }
    rec.update(kw)
    return rec


def test_parse_record_normalizes_fields():
    p = parse_record(_rec(), "math", set())
    assert (p.problem_id, p.question, p.answer, p.image_paths, p.data_source) == (
        "7",
        "How many?",
        "3",
        ["Math/a.png"],
        "src",
    )
    text_only = parse_record(_rec(data_type="text", path="", data_source=None), "math", set())
    assert text_only.image_paths == [] and text_only.data_source == "math"
    mc = parse_record(_rec(problem_type="multiple choice", options=["A. 1", " ", "B. 2"]), "m", set())
    assert mc.options == ["A. 1", "B. 2"]


@pytest.mark.parametrize(
    "record, reason",
    [
        (42, "not_an_object"),
        (_rec(problem_id=None), "missing_id"),
        (_rec(problem_id=" "), "missing_id"),
        (_rec(problem_type="essay"), "unknown_problem_type"),
        (_rec(problem=" <image> "), "empty_question"),
        (_rec(solution="<answer></answer>"), "missing_answer"),
        (_rec(problem_type="multiple choice", options=[]), "mc_without_options"),
        (_rec(path="../up.png"), "path_escapes_root"),
        (_rec(path=""), "image_missing"),
    ],
)
def test_parse_record_rejections(record, reason):
    with pytest.raises(RecordRejected) as e:
        parse_record(record, "math", set())
    assert e.value.reason == reason


def test_parse_record_rejection_carries_the_stripped_id():
    with pytest.raises(RecordRejected) as e:
        parse_record(_rec(problem_id=" 12 ", problem_type="essay"), "math", set())
    assert (e.value.reason, e.value.problem_id) == ("unknown_problem_type", "12")
    with pytest.raises(RecordRejected) as e:
        parse_record(42, "math", set())
    assert e.value.problem_id is None


def test_parse_record_duplicate_id_keeps_the_first():
    seen: set[str] = set()
    parse_record(_rec(), "math", seen)
    with pytest.raises(RecordRejected) as e:
        parse_record(_rec(problem="another question"), "math", seen)
    assert e.value.reason == "duplicate_id"
    parse_record(_rec(), "chart", set())  # same id in another subset is fine


def test_strip_media_tokens():
    assert strip_media_tokens(" <image>\nWhat <video>is<audio> this? ") == "What is this?"


def test_user_content_multiple_choice_with_two_images():
    text = build_user_content("<image>Which one?", "multiple choice", ["A. cat", "B. dog"], 2)
    head = "<image><image>\nWhich one?\nOptions:\nA. cat\nB. dog\n\n"
    assert text.startswith(head)
    assert text.endswith("\nThe answer is the letter of the correct option alone, for example B.")
    assert text.count("<image>") == 2 and "<think>" in text and "<answer>" in text


def test_user_content_text_only_has_no_placeholder():
    text = build_user_content("What is 2+3?", "numerical", ["A. ignored"], 0)
    assert text.startswith("What is 2+3?\n\n") and "<image>" not in text and "Options" not in text
    with pytest.raises(KeyError):
        build_user_content("q", "essay", [], 0)


def test_prompt_is_system_then_user():
    msgs = build_prompt("q", "OCR", [], 1)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "<think>" in msgs[0]["content"] and "</answer>" in msgs[0]["content"]


# --- split ----------------------------------------------------------------------------------------------------


def test_split_picks_the_smallest_hashes_whatever_the_order():
    keys = [split_key("math", str(i)) for i in range(50)]
    val = choose_val_keys(keys, 5)
    assert len(val) == 5 and val == choose_val_keys(list(reversed(keys)), 5)
    assert max(key_hash(k) for k in val) < min(key_hash(k) for k in keys if k not in val)
    assert choose_val_keys(keys, 0) == set() and choose_val_keys(keys[:3], 10) == set(keys[:3])


def test_key_hash_is_the_first_8_bytes_of_sha256():
    assert key_hash("math/1") == int.from_bytes(hashlib.sha256(b"math/1").digest()[:8], "big")
    assert key_hash("math/1") == 0x8E4524C3EFE20A39 == 10251640550740593209  # pinned: must not change across runs
    assert 0 <= key_hash("x") < 2**64


def test_choose_val_keys_pinned():
    # sha256 hex prefixes, smallest first: math/3 1b7f..., math/4 5342..., math/2 5573..., math/7 6a6f...,
    # math/1 8e45..., math/5 96fb..., math/0 c62b..., math/6 e293...
    keys = [f"math/{i}" for i in range(8)]
    assert choose_val_keys(keys, 3) == {"math/3", "math/4", "math/2"}
    assert choose_val_keys(iter(keys), 1) == {"math/3"}  # any iterable, e.g. a generator


# --- schema and writer ----------------------------------------------------------------------------------------


def test_writer_shards_by_row_count(tmp_path):
    schema = row_schema("embed")
    p = parse_record(_rec(), "math", set())
    w = ShardedParquetWriter(tmp_path, "train", schema, shard_rows=3, group_rows=2)
    for i in range(7):
        w.write(make_row(p, [{"bytes": b"img%d" % i}], "train", i), 4)
    shards = w.close()
    assert [s.name for s in shards] == ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"]
    assert [pq.ParquetFile(s).metadata.num_rows for s in shards] == [3, 3, 1]
    assert pq.ParquetFile(shards[0]).metadata.num_row_groups == 2  # groups of 2 + 1 within the 3-row shard
    rows = [r for s in shards for r in pq.read_table(s).to_pylist()]
    assert [r["extra_info"]["index"] for r in rows] == list(range(7))
    assert rows[6]["images"] == [{"bytes": b"img6"}]
    assert not list(tmp_path.glob("*.tmp"))


def test_row_schema_has_one_field_per_image_struct():
    assert row_schema("embed").field("images").type == pa.list_(pa.struct([("bytes", pa.binary())]))
    assert row_schema("path").field("images").type == pa.list_(pa.struct([("image", pa.string())]))
    with pytest.raises(ValueError):
        row_schema("base64")
