"The spec's examples, extracted from the spec file itself, round-trip through the models."
import copy, json, re
import pytest
from conftest import SPEC, spec_json_blocks
from tinytorch_progress.schemas import FORMATS, detect_format, validate, FormatError, CombinedExport

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
    from tinytorch_progress.schemas import load, parse_json
    with pytest.raises(json.JSONDecodeError) as raised: json.loads(text)
    where = f"line {raised.value.lineno} column {raised.value.colno}"
    with pytest.raises(FormatError) as e: parse_json(text, "f.json")
    assert str(e.value).startswith(f"f.json: {where}: invalid JSON: ") and "\n" not in str(e.value)
    assert (e.value.path, e.value.where) == ("f.json", where) and e.value.what.startswith("invalid JSON: ")
    p = tmp_path / "progress.json"; p.write_text(text)
    with pytest.raises(FormatError, match=rf"^{re.escape(str(p))}: {where}: invalid JSON: "): load(p)
