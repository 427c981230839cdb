from datetime import date

import pytest

from workbench.errors import ParamsError
from workbench.params import load_params, parse_params, redact

ORDERS = {"path": "orders.csv"}


def test_demo_params_validate(project_root):
    p = load_params(project_root / "params" / "demo.yaml")
    assert p.run_name == "demo"
    assert p.data.orders.columns["order_id"] == "InvoiceNo"
    # relative paths resolve against the project root (the parent of params/)
    assert p.data.orders.path == str(project_root / "data" / "demo" / "online_retail.csv.gz")


def test_monthly_params_are_the_demo_with_file_exports(project_root):
    """The scheduled job's params (docs/scheduling.md) validate and read the demo data."""
    monthly = load_params(project_root / "params" / "monthly.yaml")
    demo = load_params(project_root / "params" / "demo.yaml")
    assert monthly.run_name == "monthly"
    assert monthly.data == demo.data and monthly.segments == demo.segments
    assert [e.type for e in monthly.exports] == ["csv"]


def test_params_are_frozen(project_root):
    p = load_params(project_root / "params" / "demo.yaml")
    with pytest.raises(Exception, match="frozen"):
        p.run_name = "x"  # type: ignore[misc]


def test_typo_in_key_names_path_and_suggests(write_params):
    path = write_params(data={"orders": {"path": "o.csv", "colums": {}}})
    with pytest.raises(ParamsError) as err:
        load_params(path)
    msg = err.value.message
    assert "data.orders.colums: unknown key" in msg
    assert "did you mean 'columns'" in msg
    assert str(path) in msg


def test_top_level_typo(write_params):
    path = write_params(data={"orders": ORDERS}, engnie="duckdb")
    with pytest.raises(ParamsError, match=r"engnie: unknown key; did you mean 'engine'"):
        load_params(path)


def test_unknown_engine_lists_choices(write_params):
    path = write_params(data={"orders": ORDERS}, engine="spark")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert "engine:" in err.value.message
    assert "'duckdb'" in err.value.message and "'pyspark'" in err.value.message


def test_bad_values(write_params):
    path = write_params(data={"orders": ORDERS}, as_of="09/09/2011", models={"horizon_days": 0})
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert "as_of:" in err.value.message
    assert "models.horizon_days:" in err.value.message


def test_missing_required(write_params):
    path = write_params()
    with pytest.raises(ParamsError, match="data: required key is missing"):
        load_params(path)


def test_set_overrides(write_params):
    path = write_params(data={"orders": ORDERS})
    p = load_params(path, ["models.horizon_days=60", "as_of=2024-01-31", "engine=pyspark"])
    assert p.models.horizon_days == 60
    assert p.as_of == date(2024, 1, 31)
    assert p.engine == "pyspark"


def test_set_override_bad_form(write_params):
    path = write_params(data={"orders": ORDERS})
    with pytest.raises(ParamsError, match="key=value"):
        load_params(path, ["models.horizon_days"])
    with pytest.raises(ParamsError, match=r"models\.horizn_days: unknown key"):
        load_params(path, ["models.horizn_days=3"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_name: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_relative_paths_outside_params_folder(write_params, tmp_path):
    p = load_params(write_params(data={"orders": ORDERS}))
    assert p.data.orders.path == str(tmp_path / "orders.csv")


def test_sql_source_needs_query_and_env():
    with pytest.raises(ParamsError, match="needs both 'query' and 'url_env'"):
        parse_params({"run_name": "x", "data": {"orders": {"format": "sql", "query": "select 1"}}})


def test_redact_hides_secret_values_but_keeps_env_names():
    values = {"exports": [{"api_key_env": "MC_KEY", "api_key": "abc", "token": "t"}]}
    out = redact(values)
    assert out["exports"][0] == {"api_key_env": "MC_KEY", "api_key": "***", "token": "***"}
