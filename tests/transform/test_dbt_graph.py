"""The transformation DAG's view of the dbt project: a task per seed and model in lineage order,
each data test reported by the latest node it reads, and what a node's task says about the build.
(The real project's graph and a real failing build are tested in tests/test_dag_integrity.py and
tests/test_e2e_pipeline.py.)"""

from __future__ import annotations

import json

import pytest

from calltrail.transform import dbt_graph


def node(kind: str, name: str, *parents: str) -> tuple[str, dict]:
    uid = f"{kind}.shop.{name}"
    return uid, {"resource_type": kind, "name": name, "package_name": "shop", "config": {"enabled": True},
                 "depends_on": {"nodes": list(parents)}, "description": f"about {name}"}


@pytest.fixture
def manifest(tmp_path):
    nodes = dict([
        node("seed", "countries"),
        node("model", "stg_orders"),
        node("model", "stg_customers", "seed.shop.countries"),
        node("model", "fct_orders", "model.shop.stg_orders", "model.shop.stg_customers"),
        node("test", "not_null_stg_orders_id", "model.shop.stg_orders"),
        # a relationships test reads both models: the later one reports it
        node("test", "relationships_fct_orders_customer", "model.shop.stg_customers", "model.shop.fct_orders"),
        # two models, neither reading the other: the one later in lineage order reports it
        node("test", "same_count_orders_customers", "model.shop.stg_orders", "model.shop.stg_customers"),
        node("model", "from_a_package"),
    ])
    nodes["model.shop.from_a_package"]["package_name"] = "elsewhere"
    nodes["test.shop.disabled"] = {**node("test", "disabled", "model.shop.fct_orders")[1], "config": {"enabled": False}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"metadata": {"project_name": "shop"}, "nodes": nodes}))
    return path


def test_every_seed_and_model_of_the_project_in_lineage_order_with_the_tests_it_reports(manifest):
    graph = dbt_graph.read(manifest)
    assert [(n.name, n.resource_type) for n in graph] == [
        ("stg_orders", "model"), ("countries", "seed"), ("stg_customers", "model"), ("fct_orders", "model")]
    by_name = {n.name: n for n in graph}
    assert by_name["fct_orders"].parents == ("model.shop.stg_customers", "model.shop.stg_orders")
    assert by_name["stg_orders"].tests == ("test.shop.not_null_stg_orders_id",)
    assert by_name["fct_orders"].tests == ("test.shop.relationships_fct_orders_customer",)
    assert by_name["stg_customers"].tests == ("test.shop.same_count_orders_customers",)
    assert by_name["countries"].tests == ()


def test_a_cycle_is_refused_by_name(tmp_path):
    nodes = dict([node("model", "a", "model.shop.b"), node("model", "b", "model.shop.a")])
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"metadata": {"project_name": "shop"}, "nodes": nodes}))
    with pytest.raises(ValueError, match="cycle among"):
        dbt_graph.read(path)


FCT = dbt_graph.Node("model.shop.fct_orders", "fct_orders", "model", (), "",
                     ("test.shop.relationships_fct_orders_customer.1a2b", "test.shop.unique_fct_orders_id.3c4d"))


def result(status: str, message: str = "") -> dict:
    return {"status": status, "seconds": 0.25, "message": message}


def test_a_built_node_with_passing_and_warning_tests_reports_them_and_does_not_fail():
    found = dbt_graph.report(FCT, {"model.shop.fct_orders": result("success", "OK"),
                                   FCT.tests[0]: result("pass"),
                                   FCT.tests[1]: result("warn", "Got 2 results, configured to warn if != 0")})
    assert found.failures == []
    assert found.lines[0] == "fct_orders: success in 0.25 s (OK)"
    assert "  warning: the data test unique_fct_orders_id warns: Got 2 results, configured to warn if != 0" \
        in found.lines


def test_a_failed_test_fails_the_node_naming_the_test_and_dbts_message():
    found = dbt_graph.report(FCT, {"model.shop.fct_orders": result("success"),
                                   FCT.tests[0]: result("fail", "Got 3 results, configured to fail if != 0"),
                                   FCT.tests[1]: result("pass")})
    assert found.failures == ["the data test relationships_fct_orders_customer of fct_orders failed: "
                              "Got 3 results, configured to fail if != 0"]


def test_a_node_in_error_a_node_dbt_skipped_and_a_node_dbt_never_reported_each_fail_with_why():
    error = dbt_graph.report(FCT, {"model.shop.fct_orders": result("error", "Binder Error: column x")})
    assert error.failures == ["fct_orders failed: Binder Error: column x"]
    assert "  test unique_fct_orders_id: not run" in error.lines
    skipped = dbt_graph.report(FCT, {"model.shop.fct_orders": result("skipped")})
    assert skipped.failures[0].startswith("fct_orders was skipped by dbt: a node or data test it depends on failed")
    missing = dbt_graph.report(FCT, {})
    assert missing.failures == ["fct_orders: the build did not report this model: dbt did not select it"]
