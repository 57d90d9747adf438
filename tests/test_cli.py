"""The `audit` command line, driven as a user would, on real databases."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from simfixtures import SimArchive

import audit
from audit.archive.sources import file_source_name
from audit.cli import cli

STATUS_KEYS = {"envelopes", "messages", "conversations", "findings", "alerts", "checkpoints"}


def invoke(*args: str, input: str | None = None) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_status_json_has_the_documented_shape(db_url: str, sim_archive: SimArchive) -> None:
    result = invoke(
        "--db", db_url, "run", "--source", "simulator", "--path", str(sim_archive.directory)
    )
    assert result.exit_code == 0, result.output
    result = invoke("--db", db_url, "status", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert set(data) >= STATUS_KEYS
    assert set(data["envelopes"]) >= {"total", "decrypted", "failed", "pending"}
    assert data["envelopes"]["total"] == sum(
        data["envelopes"][k] for k in ("decrypted", "failed", "pending")
    )
    assert set(data["messages"]) >= {"total", "by_type"}
    assert data["messages"]["total"] == sum(data["messages"]["by_type"].values())
    assert data["messages"]["by_type"]["switch"] == sim_archive.manifest["by_type"]["switch"]
    assert data["messages"]["by_type"]["revoke"] == sim_archive.manifest["by_type"]["revoke"]
    assert isinstance(data["conversations"], int) and data["conversations"] > 0
    assert set(data["findings"]) >= {"total", "by_category"}
    assert set(data["alerts"]) >= {"total", "by_state"}
    assert data["checkpoints"] == {"simulator": sim_archive.manifest["last_seq"]}


def test_status_on_fresh_database_is_all_zero(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert invoke("--db", db, "init").exit_code == 0
    data = json.loads(invoke("--db", db, "status", "--json").output)
    assert data["envelopes"] == {"total": 0, "pending": 0, "decrypted": 0, "failed": 0}
    assert data["messages"] == {"total": 0, "by_type": {}}
    assert data["checkpoints"] == {}


def test_when_database_not_initialised_then_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'x.db'}", "status"])
    assert result.exit_code == 1
    assert "run `audit init` first" in result.output
    assert "Traceback" not in result.output


def test_when_config_invalid_then_error_names_key(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[conversations]\nidle_gap_minutes = 0\n")
    result = CliRunner().invoke(cli, ["--config", str(cfg), "status"])
    assert result.exit_code == 1
    assert "conversations.idle_gap_minutes" in result.output and str(cfg) in result.output


def test_inspect_reads_json_lines_and_keeps_ids() -> None:
    lines = [
        {"id": "a", "text": "加我微 信，发你 138 0013 8000", "role": "staff"},
        {"id": 7, "text": "您好，请问有什么可以帮您？", "role": "staff"},
        {"id": "c", "text": "我要打12315投诉你们", "role": "customer"},
    ]
    stdin = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{oops\n"
    result = invoke("inspect", input=stdin)
    out = [json.loads(line) for line in result.output.strip().splitlines() if line.startswith("{")]
    assert [o["id"] for o in out] == ["a", 7, "c", None]
    first = out[0]
    assert {f["category"] for f in first["findings"]} == {"diversion", "privacy"}
    for f in first["findings"]:
        assert lines[0]["text"][f["start"] : f["end"]] == f["matched"]
        assert set(f) >= {"category", "rule", "severity", "start", "end", "matched"}
    assert out[1]["findings"] == []
    assert set(out[1]["scores"]) == {"staff_discourtesy"}  # a polite staff line
    assert out[1]["scores"]["staff_discourtesy"] < 0.5
    assert {f["category"] for f in out[2]["findings"]} == {"complaint"}
    assert set(out[2]["scores"]) == {"customer_negative"}
    assert out[2]["scores"]["customer_negative"] > 0.5
    assert "error" in out[3]


def test_inspect_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": 1, "text": "保证收益百分之百", "role": "staff"}), "utf-8")
    out = json.loads(invoke("inspect", "--input", str(path)).output)
    assert out["id"] == 1 and {f["category"] for f in out["findings"]} == {"promise"}


def test_simulate_then_pull_file_archive_with_keys(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    db = f"sqlite:///{tmp_path / 'a.db'}"
    result = invoke(
        "simulate",
        "--out",
        str(sim),
        "--messages",
        "300",
        "--stores",
        "2",
        "--days",
        "1",
    )
    assert result.exit_code == 0 and "300 messages" in result.output
    invoke("--db", db, "init")
    result = invoke(
        "--db",
        db,
        "pull",
        "--source",
        "file",
        "--path",
        str(sim / "archive.jsonl"),
        "--key",
        f"1={sim / 'keys/v1.pem'}",
        "--key",
        f"2={sim / 'keys/v2.pem'}",
    )
    assert result.exit_code == 0, result.output
    assert "decrypted 300, failed 0" in result.output
    data = json.loads(invoke("--db", db, "status", "--json").output)
    # one checkpoint per archive file, named after the file and a hash of its first line
    (name,) = data["checkpoints"]
    assert name == file_source_name(sim / "archive.jsonl")
    assert name.startswith("file:archive.jsonl:")
    manifest = json.loads((sim / "manifest.json").read_text("utf-8"))
    assert data["checkpoints"][name] == manifest["last_seq"] and data["messages"]["total"] == 300


def test_pull_without_key_keeps_failed_and_retry_recovers(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    db = f"sqlite:///{tmp_path / 'a.db'}"
    invoke("simulate", "--out", str(sim), "--messages", "200", "--stores", "1", "--days", "2")
    invoke("--db", db, "init")
    archive = str(sim / "archive.jsonl")
    invoke(
        "--db",
        db,
        "pull",
        "--source",
        "file",
        "--path",
        archive,
        "--key",
        f"1={sim / 'keys/v1.pem'}",
    )
    data = json.loads(invoke("--db", db, "status", "--json").output)
    # the second half of the archive needs key version 2
    envelopes = [json.loads(x) for x in Path(archive).read_text("utf-8").splitlines()]
    needs_v2 = sum(1 for e in envelopes if e["publickey_ver"] == 2)
    assert data["envelopes"]["failed"] == needs_v2 > 0
    listed = invoke("--db", db, "failures", "--limit", "3")
    assert listed.output.startswith(f"{data['envelopes']['failed']} failed envelope(s)")
    assert "no private key for publickey_ver 2 (have: 1)" in listed.output
    lines = invoke("--db", db, "failures", "--json", "--limit", "1000").output.splitlines()
    assert len(lines) == data["envelopes"]["failed"]
    assert all(json.loads(line)["publickey_ver"] == 2 for line in lines)
    result = invoke(
        "--db",
        db,
        "retry-failed",
        "--source",
        "file",
        "--path",
        archive,
        "--key",
        f"1={sim / 'keys/v1.pem'}",
        "--key",
        f"2={sim / 'keys/v2.pem'}",
    )
    assert result.exit_code == 0 and "still failed 0" in result.output
    data = json.loads(invoke("--db", db, "status", "--json").output)
    assert data["envelopes"]["failed"] == 0 and data["envelopes"]["decrypted"] == 200


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_documented(name: str) -> None:
    result = invoke(name, "--help")
    assert result.exit_code == 0
    command = cli.commands[name]
    assert command.help and len(command.help) > 20
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    assert f"audit {name}" in readme, f"`audit {name}` is not in the README"


def test_the_library_never_imports_the_cli() -> None:
    """Only ``audit/cli/`` (and ``python -m audit``) may import the CLI, even inside a function."""
    import ast

    package = Path(audit.__file__).resolve().parent
    importers = []
    for path in sorted(package.rglob("*.py")):
        if path.parent == package / "cli" or path == package / "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            if any(n == "audit.cli" or n.startswith("audit.cli.") for n in names):
                importers.append(f"{path.relative_to(package)}:{node.lineno}")
    assert importers == []


IMPORTS = Path(__file__).resolve().parent / "data" / "imports"


def test_import_org_and_tags_then_sync_contacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_wecom import CORPID, SECRET, serve
    from sqlalchemy import select

    from audit.store.db import make_engine, session_scope
    from audit.store.models import Follow, OrgUnit, Staff

    db = f"sqlite:///{tmp_path / 'a.db'}"
    invoke("--db", db, "init")
    result = invoke("--db", db, "import-org", str(IMPORTS / "org.csv"))
    assert result.exit_code == 0 and "staff" in result.output
    bad = CliRunner().invoke(cli, ["--db", db, "import-org", str(IMPORTS / "org_bad.csv")])
    assert bad.exit_code == 1 and "org_bad.csv:3" in bad.output and "store_code" in bad.output
    assert invoke("--db", db, "import-tags", str(IMPORTS / "tags.csv")).exit_code == 0
    with serve() as fake:
        fake.permit = {1: ["zhangwei.s001"]}
        fake.by_user = {
            "zhangwei.s001": [
                (
                    {
                        "external_userid": "wmCLI0000000000000000000000000",
                        "name": "陈先生",
                        "type": 1,
                        "gender": 1,
                    },
                    {
                        "userid": "zhangwei.s001",
                        "remark": "",
                        "createtime": 1700000000,
                        "add_way": 1,
                        "state": "qr_store_S001",
                        "tag_id": [],
                    },
                )
            ]
        }
        monkeypatch.setenv("AUDIT_WECOM__BASE_URL", fake.base_url)
        monkeypatch.setenv("AUDIT_WECOM__CORPID", CORPID)
        monkeypatch.setenv("AUDIT_WECOM__CONTACT_SECRET", SECRET)
        result = invoke("--db", db, "sync-contacts")
    assert result.exit_code == 0, result.output
    assert "1 staff, 1 customers, 1 follow relations" in result.output
    assert SECRET not in result.output
    engine = make_engine(db)
    with session_scope(engine) as session:
        staff = session.scalars(select(Staff).where(Staff.userid == "zhangwei.s001")).one()
        store = session.get(OrgUnit, staff.org_unit_id)
        assert store is not None and store.code == "S001"  # the imported store is kept
        assert session.scalars(select(Follow.state)).all() == ["qr_store_S001"]


def test_sync_contacts_without_secret_says_what_to_set(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    invoke("--db", db, "init")
    result = CliRunner().invoke(cli, ["--db", db, "sync-contacts"], env={"AUDIT_WECOM__CORPID": ""})
    assert result.exit_code == 1 and "AUDIT_WECOM__CONTACT_SECRET" in result.output


def test_users_add_list_disable(tmp_path: Path) -> None:
    import getpass

    from sqlalchemy import select

    from audit.store.db import make_engine, session_scope
    from audit.store.models import AuditLog
    from audit.store.users import authenticate

    db = f"sqlite:///{tmp_path / 'a.db'}"
    invoke("--db", db, "init")
    invoke("--db", db, "import-org", str(IMPORTS / "org.csv"))
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--db", db, "users", "add", "wang.li", "--role", "supervisor", "--scope", "S001"],
        input="s3cret-pass\ns3cret-pass\n",
    )
    assert result.exit_code == 0, result.output
    no_scope = runner.invoke(
        cli,
        ["--db", db, "users", "add", "zhao", "--role", "supervisor", "--password", "Second-pw-12"],
    )
    assert no_scope.exit_code == 1 and "--scope" in no_scope.output
    unknown = runner.invoke(
        cli, ["--db", db, "users", "add", "qian", "--role", "viewer", "--scope", "NOPE",
              "--password", "Third-pass-34"],
    )  # fmt: skip
    assert unknown.exit_code == 1 and "NOPE" in unknown.output
    listed = json.loads(invoke("--db", db, "users", "list", "--json").output)
    assert listed == {"username": "wang.li", "role": "supervisor", "scopes": ["S001"],
                      "active": True, "email": ""}  # fmt: skip
    engine = make_engine(db)
    with session_scope(engine) as session:
        assert authenticate(session, "wang.li", "s3cret-pass") is not None
    assert invoke("--db", db, "users", "disable", "wang.li").exit_code == 0
    with session_scope(engine) as session:
        assert authenticate(session, "wang.li", "s3cret-pass") is None
        trail = session.execute(select(AuditLog.actor, AuditLog.action, AuditLog.target_id))
        rows = [tuple(r) for r in trail if r.action.startswith("user.")]
    # the operator at the command line is who the trail names
    operator = f"cli:{getpass.getuser()}"
    assert rows == [
        (operator, "user.add", "wang.li"),
        (operator, "user.disable", "wang.li"),
    ]


def test_demo_without_dashboard_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # wordlists and models are found beside the package
    result = CliRunner().invoke(
        cli, ["demo", "--no-dashboard", "--messages", "400", "--out", "sim"]
    )
    assert result.exit_code == 0, result.output
    assert "password audit-demo" in result.output
    data = json.loads(invoke("status", "--json").output)
    assert data["messages"]["total"] == 400 and data["findings"]["total"] > 0
    users = [json.loads(x) for x in invoke("users", "list", "--json").output.splitlines()]
    assert {u["username"] for u in users} == {"admin", "supervisor", "analyst"}
    again = CliRunner().invoke(cli, ["demo", "--no-dashboard", "--messages", "400", "--out", "sim"])
    assert "reusing the simulated archive" in again.output
    assert json.loads(invoke("status", "--json").output) == data


def test_users_refuses_weak_passwords_and_bad_names_in_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    invoke("--db", db, "init")
    runner = CliRunner()
    for args, says in [
        (["bad\nname", "--role", "admin", "--password", "Long-enough-1"], "username"),
        (["amy", "--role", "admin", "--password", "aaaaaaaaaaaa"], "repeated or sequential"),
    ]:
        result = runner.invoke(cli, ["--db", db, "users", "add", *args])
        assert result.exit_code == 1 and says in result.output
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    ok = runner.invoke(cli, ["--db", db, "users", "add", "amy", "--role", "admin",
                             "--password", "Long-enough-1"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    changed = runner.invoke(
        cli, ["--db", db, "users", "passwd", "amy", "--password", "Other-pw-22"]
    )
    assert changed.exit_code == 0
    assert changed.output == "password of amy changed; their open dashboard sessions are ended\n"
