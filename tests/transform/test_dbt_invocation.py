"""What lets an in-process dbt command skip work: the docs reuse a build's compiled manifest only,
and a kept manifest is reused only while no file of the project changed."""

import json
import os

from calltrail.transform.dbt import _compiled, _project_files


def _manifest(path, **models):
    path.write_text(json.dumps({"nodes": {
        f"model.p.{name}": {"resource_type": "model", "compiled_code": code} for name, code in models.items()}
        | {"seed.p.s": {"resource_type": "seed"}}}))
    return path


def test_the_docs_reuse_a_manifest_only_when_every_model_in_it_was_compiled(tmp_path):
    assert _compiled(_manifest(tmp_path / "built.json", a="select 1", b="select 2"))
    assert not _compiled(_manifest(tmp_path / "parsed.json", a=None, b=None))  # a parse: no compiled code
    assert not _compiled(_manifest(tmp_path / "partly.json", a="select 1", b=None))
    assert not _compiled(_manifest(tmp_path / "none.json"))
    assert not _compiled(tmp_path / "missing.json")
    (tmp_path / "torn.json").write_text('{"nodes": {')
    assert not _compiled(tmp_path / "torn.json")


def test_the_project_fingerprint_changes_with_a_model_but_not_with_dbts_own_output(tmp_path):
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "m.sql"
    model.write_text("select 1")
    for own in ("target", "logs"):
        (tmp_path / own).mkdir()
    before = _project_files(tmp_path)
    (tmp_path / "target" / "manifest.json").write_text("{}")
    (tmp_path / "logs" / "dbt.log").write_text("a line")
    assert _project_files(tmp_path) == before
    model.write_text("select 2")
    os.utime(model, ns=(0, 0))  # the same size; a different modification time
    assert _project_files(tmp_path) != before
