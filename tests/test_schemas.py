"The spec's examples, extracted from the spec file itself, round-trip through the models."
import copy, json, re
import pytest
from conftest import SPEC, spec_json_blocks
from tinytorch_progress.errors import FormatError
from tinytorch_progress.schemas import FORMATS, detect_format, validate, CombinedExport

BLOCKS = spec_json_blocks()
EXPECTED = ["root-progress", "progress", "milestones", "config", "report-card", "performance", "export"]


def test_spec_has_seven_json_examples():
    assert len(BLOCKS) == 7


@pytest.mark.parametrize("i,fmt", list(enumerate(EXPECTED)))
def test_spec_example_round_trips(i, fmt):
    data = BLOCKS[i]
    assert detect_format("example.json", data) == fmt
    model = validate(data, fmt)
    out = model.to_json()
    if fmt == "milestones":  # reading a 1.0 file migrates it to 1.1, which adds one field and keeps the rest
        assert out.pop("version") == "1.1" and out.pop("part_results") == {}
        data = {k: v for k, v in data.items() if k != "version"}
    assert out == data
    assert json.loads(json.dumps(out)) == data


def _api_blocks():
    blocks, cur = [], None
    for line in SPEC.read_text().splitlines():
        if line.startswith("```"):
            if cur is None: cur = [] if line.strip() == "```" else False
            else:
                if cur is not False: blocks.append("\n".join(cur))
                cur = None
        elif cur: cur.append(line)
        elif cur == []: cur.append(line)
    upload = next(b for b in blocks if "POST /api/progress/upload" in b)
    board = next(b for b in blocks if '"leaderboard"' in b)
    return upload.split("\n\n", 1)[1], board.split("Response:", 1)[1]


def test_spec_upload_example_validates():
    body, _ = _api_blocks()
    export = BLOCKS[6]
    filled = body.replace('"user_id": "..."', '"user_id": "student_identifier"')
    filled = filled.replace('"module_progress": {...}', '"module_progress": ' + json.dumps(export["module_progress"]))
    filled = filled.replace('"milestone_progress": {...}', '"milestone_progress": ' + json.dumps(export["milestone_progress"]))
    data = json.loads(filled)
    assert detect_format("body.json", data) == "upload"
    m = validate(data, "upload")
    out = m.to_json()
    assert {k: out[k] for k in data} == data


def test_spec_leaderboard_example_validates():
    _, body = _api_blocks()
    body = re.sub(r",\s*\.\.\.\s*\]", "]", body).replace('"..."', '"someone"')
    data = json.loads(body)
    assert validate(data, "leaderboard").to_json() == data


def test_seed_export_is_self_consistent_in_counts():
    assert CombinedExport.model_validate(BLOCKS[6]).consistency_errors() == []


def test_ids_are_normalised_in_every_model():
    p = validate({"started_modules": [1, "2", "03", "04_losses"], "completed_modules": []}, "root-progress")
    assert p.to_json()["started_modules"] == ["01", "02", "03", "04"]
    t = validate({"completed_modules": ["01", "2_x"], "completion_dates": {"01": "2025-01-01T00:00:00"}}, "progress")
    assert t.to_json()["completed_modules"] == [1, 2] and t.to_json()["completion_dates"] == {"1": "2025-01-01T00:00:00"}
    m = validate({"unlocked_milestones": [1, "2", "03"], "unlock_dates": {"1": "2025-01-01T00:00:00+02:00"}}, "milestones")
    assert m.to_json()["unlocked_milestones"] == ["01", "02", "03"]
    assert m.to_json()["unlock_dates"] == {"01": "2025-01-01T00:00:00+02:00"}


def test_unknown_fields_survive_and_versions_are_checked():
    d = copy.deepcopy(BLOCKS[1]); d["new_thing"] = {"x": [1, 2]}
    assert validate(d, "progress").to_json()["new_thing"] == {"x": [1, 2]}
    old = {"completed_modules": [1]}  # pre-versioned file
    assert validate(old, "progress").to_json()["version"] == "1.0"
    with pytest.raises(FormatError, match="newer than this tinytorch-progress"):
        validate({**BLOCKS[1], "version": "2.0"}, "progress")
    with pytest.raises(FormatError, match="newer"):
        validate({**BLOCKS[2], "version": "3.1"}, "milestones")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_has_a_json_schema(fmt):
    from tinytorch_progress.schemas import json_schema
    s = json_schema(fmt)
    assert s["type"] == "object" and (s.get("properties") or s.get("additionalProperties"))


# Each decoder error the JSON module can raise: the message is ours ("path: line L column C: invalid JSON: ") on every
# interpreter, with the position taken from the decoder's own fields (3.13 puts a trailing comma's column elsewhere).
BAD_JSON = ['{"a": 1,}', '[1, 2,]', '{"a" 1}', '{not json', '{"a": 1}}', '[1 2]', '{"a": "x', '"\\x"', '{\n  "a": 1\n  "b": 2\n}']


@pytest.mark.parametrize("text", BAD_JSON)
def test_json_errors_use_our_wording_and_the_decoders_position(text, tmp_path):
    from tinytorch_progress.schemas import load
    from tinytorch_progress.jsonio import parse_json
    with pytest.raises(json.JSONDecodeError) as raised: json.loads(text)
    where = f"line {raised.value.lineno} column {raised.value.colno}"
    with pytest.raises(FormatError) as e: parse_json(text, "f.json")
    assert str(e.value).startswith(f"f.json: {where}: invalid JSON: ") and "\n" not in str(e.value)
    assert (e.value.path, e.value.where) == ("f.json", where) and e.value.what.startswith("invalid JSON: ")
    p = tmp_path / "progress.json"; p.write_text(text)
    with pytest.raises(FormatError, match=rf"^{re.escape(str(p))}: {where}: invalid JSON: "): load(p)


# ---------------------------------------------------------------- issue 19: repeated keys, self-consistency, user ids

@pytest.mark.parametrize("i,fmt", list(enumerate(EXPECTED)))
def test_a_repeated_key_is_refused_strictly_and_read_leniently(i, fmt, tmp_path):
    "In every format: `unique_keys=True` (tito validate, uploads) names the file, the line and the key; a plain read keeps the last."
    from tinytorch_progress.schemas import load
    from tinytorch_progress.jsonio import parse_json
    data = BLOCKS[i]
    key = next(iter(data))
    text = json.dumps(data, indent=2)[:-2] + f',\n  {json.dumps(key)}: {json.dumps(data[key])}\n}}'
    line = text.count("\n")  # the repeated key is on the last line but one
    assert parse_json(text, "f.json") == data  # read leniently: the same value, the last one wins
    with pytest.raises(FormatError) as e: parse_json(text, "f.json", unique_keys=True)
    assert str(e.value) == f"f.json: line {line}: duplicate key {json.dumps(key)}"
    p = tmp_path / "x.json"; p.write_text(text)
    with pytest.raises(FormatError, match=rf"^{re.escape(str(p))}: line {line}: duplicate key"): load(p, fmt, unique_keys=True)
    assert load(p, fmt) is not None


@pytest.mark.parametrize("text,line,key", [
    ('{"a": {"b": 1, "c": [{"b": 2}], "b": 3}}', 1, "b"),               # nested object
    ('{"a": "{\\"a\\": 1, \\"a\\": 2}",\n"b": 1}', None, None),           # keys inside a string are not keys
    ('[{"x": 1}, {"x": 2}]', None, None),                                # the same key in two objects is fine
    ('{"k": 1,\n "\\u006b": 2}', 2, "k"),                                # the same key spelled with an escape
    ('{"é": 1,\n\n "é": 2}', 3, "é"),
])
def test_repeated_keys_are_found_where_they_are(text, line, key):
    from tinytorch_progress.jsonio import parse_json
    if key is None: parse_json(text, unique_keys=True); return
    with pytest.raises(FormatError) as e: parse_json(text, "f.json", unique_keys=True)
    assert str(e.value) == f"f.json: line {line}: duplicate key {json.dumps(key)}"


def test_the_spec_milestones_file_is_consistent_and_each_contradiction_is_reported():
    m = validate(BLOCKS[2], "milestones")
    assert m.consistency_errors() == []
    bad = validate({**BLOCKS[2], "completed_milestones": ["03", "06"], "unlocked_milestones": ["01", "03", "01"],
                    "unlock_dates": {"01": "2025-11-15T10:00:00"}, "total_unlocked": 5}, "milestones")
    assert bad.consistency_errors() == [
        "unlocked_milestones: milestone 01 is listed 2 times",
        "completed_milestones: milestone 06 is completed but not in unlocked_milestones",
        "completion_dates: no date for completed milestone 06",
        "unlock_dates: no date for unlocked milestone 03",
        "total_unlocked: 5 but unlocked_milestones lists 2"]
    # total_unlocked is only checked when the file has it
    assert validate({"unlocked_milestones": ["01"], "unlock_dates": {"01": "2025-11-15T10:00:00"}}, "milestones").consistency_errors() == []


@pytest.mark.parametrize("uid", ["cs101/bob", "\u202eevil", "bob\u200b", " bob", "bob ", "", ".bob", "x" * 129, "Ådа"])
def test_api_formats_follow_the_user_id_rule(uid):
    export = {**BLOCKS[6], "user_id": uid}
    with pytest.raises(FormatError, match=r"^<input>: user_id: value .*; use 1–128 ASCII letters, digits or \. _ @ \+ -"):
        validate(export, "export")
    with pytest.raises(FormatError, match="user_id"): validate({k: v for k, v in export.items() if k != "timestamp"}, "upload")
    with pytest.raises(FormatError, match=r"leaderboard\[0\]\.user_id"):
        validate({"leaderboard": [{"user_id": uid, "username": "ok", "modules_completed": 1, "milestones_completed": 0, "rank": 1}]},
                 "leaderboard")


def test_an_old_config_user_id_still_loads_and_validate_reports_it(tmp_path):
    from tinytorch_progress.cli.validate import validate_files
    assert validate({"user_id": "Ada Lovelace"}, "config").consistency_errors()[0].startswith("user_id: value 'Ada Lovelace'")
    p = tmp_path / ".tito" / "config.json"; p.parent.mkdir(); p.write_text('{"user_id": "Ada Lovelace"}')
    row, = validate_files([p])
    assert not row["ok"] and row["error"].startswith(f"{p}: user_id: value 'Ada Lovelace': character ' ' (U+0020) at position 4")


def test_json_schemas_carry_the_user_id_rule():
    from tinytorch_progress.ids import USER_ID_PATTERN
    from tinytorch_progress.schemas import json_schema
    assert json_schema("export")["properties"]["user_id"]["pattern"] == USER_ID_PATTERN
    assert json_schema("config")["properties"]["user_id"]["anyOf"][0]["pattern"] != USER_ID_PATTERN  # any printable text


def test_upload_reply_is_strict():
    from tinytorch_progress.schemas import UploadReply
    ok = {"status": "unchanged", "user_id": "ada", "snapshot_id": 9, "latest": False, "modules_completed": 0, "milestones_completed": 0}
    assert UploadReply.model_validate({**ok, "served_by": "x"}).status == "unchanged"  # a field added later is fine
    for wrong in ({**ok, "snapshot_id": "9"}, {**ok, "latest": "false"}, {**ok, "user_id": "a/b"}, {**ok, "modules_completed": -1},
                  {**ok, "snapshot_id": True}, {k: v for k, v in ok.items() if k != "latest"}):
        with pytest.raises(ValueError): UploadReply.model_validate(wrong)


def test_only_regular_files_are_read(tmp_path):
    import os
    from tinytorch_progress.jsonio import read_json
    fifo = tmp_path / "pipe.json"; os.mkfifo(fifo)
    with pytest.raises(FormatError, match="is not a regular file"): read_json(fifo)  # would block forever if opened
    link = tmp_path / "zero.json"; link.symlink_to("/dev/zero")
    with pytest.raises(FormatError, match="is not a regular file"): read_json(link)  # st_size 0, never ends
