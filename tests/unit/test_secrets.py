"""`NAME` or `NAME_FILE`: one rule for every secret, and the callers that rely on it.

Each refusal must name the variable (and the file), and must never quote the secret: the
messages reach logs, task results and CLI output.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from siteops.config.secrets import SecretError, read_secret, read_secret_file

NAME = "SITEOPS_TEST_SECRET"
VALUE = "s3cr3t-Qx9-value"


def secret_file(tmp_path: Path, text: str | bytes, name: str = "secret") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def refusal(environ: dict[str, str], **kwargs: bool) -> str:
    with pytest.raises(SecretError) as caught:
        read_secret(NAME, environ=environ, **kwargs)
    return str(caught.value)


def test_the_value_or_the_file_each_stripped(tmp_path: Path) -> None:
    assert read_secret(NAME, environ={NAME: VALUE}) == VALUE
    assert read_secret(NAME, environ={NAME: f"  {VALUE}\n"}) == VALUE
    path = secret_file(tmp_path, f"{VALUE}\n")
    assert read_secret(NAME, environ={f"{NAME}_FILE": str(path)}) == VALUE
    # Only the ends go: a secret with inner blanks or a second line keeps them.
    path.write_text("two words\nand a line\r\n")
    assert read_secret(NAME, environ={f"{NAME}_FILE": str(path)}) == "two words\nand a line"


def test_neither_set_is_none_or_a_named_refusal() -> None:
    assert read_secret(NAME, environ={}) is None
    # `NAME=` (an empty compose entry) is the same as not set, for either form.
    assert read_secret(NAME, environ={NAME: "", f"{NAME}_FILE": ""}) is None
    message = refusal({NAME: ""}, required=True)
    assert NAME in message and f"{NAME}_FILE" in message and "not set" in message


def test_the_default_environment_is_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{NAME}_FILE", str(secret_file(tmp_path, VALUE)))
    monkeypatch.delenv(NAME, raising=False)
    assert read_secret(NAME) == VALUE
    monkeypatch.setenv(NAME, VALUE)
    with pytest.raises(SecretError, match="both"):
        read_secret(NAME)


def test_both_set_is_refused_whatever_they_hold(tmp_path: Path) -> None:
    path = secret_file(tmp_path, VALUE)
    for value in (VALUE, "another-one"):  # the same secret twice is still ambiguous configuration
        message = refusal({NAME: value, f"{NAME}_FILE": str(path)})
        assert NAME in message and f"{NAME}_FILE" in message and str(path) in message
        assert VALUE not in message and "another-one" not in message


def test_a_missing_file_names_the_variable_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    message = refusal({f"{NAME}_FILE": str(missing)})
    assert f"{NAME}_FILE" in message and str(missing) in message and "cannot read" in message
    # A directory where the file should be (a secret volume mounted one level off).
    message = refusal({f"{NAME}_FILE": str(tmp_path)})
    assert str(tmp_path) in message and "cannot read" in message


def test_an_empty_file_or_a_blank_value_is_refused(tmp_path: Path) -> None:
    for text in ("", "\n", "  \t\n\n"):
        path = secret_file(tmp_path, text)
        message = refusal({f"{NAME}_FILE": str(path)})
        assert f"{NAME}_FILE" in message and str(path) in message and "empty" in message
    assert "blank" in refusal({NAME: "   "})


def test_the_secret_never_shows_in_a_refusal(tmp_path: Path) -> None:
    """Not when both are set, not when the file is not text (the codec's own message would
    quote bytes of it), not in a chained cause or context either."""
    path = secret_file(tmp_path, b"\xff\xfe" + VALUE.encode() + b"\xff")
    for environ in ({f"{NAME}_FILE": str(path)}, {NAME: VALUE, f"{NAME}_FILE": str(path)}):
        with pytest.raises(SecretError) as caught:
            read_secret(NAME, environ=environ)
        shown = f"{caught.value} {caught.value!r} {caught.value.__cause__!r} {caught.value.__context__!r}"
        assert VALUE not in shown and "\\xff" not in shown


def test_read_secret_file_is_the_same_rule_for_a_path_only_setting(tmp_path: Path) -> None:
    """SITEOPS_DATABASE_PASSWORD_FILE has no plain-variable form (the URL must not carry it)."""
    assert read_secret_file("SITEOPS_DATABASE_PASSWORD_FILE", secret_file(tmp_path, "pw\n")) == "pw"
    with pytest.raises(SecretError, match=r"SITEOPS_DATABASE_PASSWORD_FILE .*gone: cannot read it"):
        read_secret_file("SITEOPS_DATABASE_PASSWORD_FILE", tmp_path / "gone")
    assert issubclass(SecretError, RuntimeError)  # what the store's callers catch


# --- the callers: each turns a refusal into its own error class ---------------------------


def test_carrier_keys_fall_back_per_account_and_refusals_are_auth_errors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from siteops.connectors.carriers.config import account, webhook_secret
    from siteops.connectors.errors import AuthError

    for var in ("SITEOPS_EASYPOST_API_KEY", "SITEOPS_EASYPOST_SIMSHIP_API_KEY", "SITEOPS_EASYPOST_WEBHOOK_SECRET"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(f"{var}_FILE", raising=False)
    simship = account("simship")
    with pytest.raises(AuthError, match="no API key for carrier account 'simship'"):
        simship.api_key()
    monkeypatch.setenv("SITEOPS_EASYPOST_API_KEY", "EZTK_global")
    assert simship.api_key() == "EZTK_global"
    monkeypatch.setenv("SITEOPS_EASYPOST_SIMSHIP_API_KEY_FILE", str(secret_file(tmp_path, "EZTK_simship\n")))
    assert simship.api_key() == "EZTK_simship"  # the account's own key first
    monkeypatch.setenv("SITEOPS_EASYPOST_SIMSHIP_API_KEY", "EZTK_stale")
    with pytest.raises(AuthError, match="both SITEOPS_EASYPOST_SIMSHIP_API_KEY and") as caught:
        simship.api_key()
    assert caught.value.system == "carrier" and "EZTK_" not in str(caught.value)
    with pytest.raises(AuthError, match="SITEOPS_EASYPOST_WEBHOOK_SECRET"):
        webhook_secret()
    monkeypatch.setenv("SITEOPS_EASYPOST_WEBHOOK_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(AuthError, match="absent: cannot read it"):
        webhook_secret()


def test_alert_webhook_secret_refusals_are_permanent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing file used to escape as a bare OSError; now it is a classified PermanentError."""
    from siteops.connectors.errors import PermanentError
    from siteops.connectors.webhook import configured_secret

    monkeypatch.delenv("SITEOPS_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("SITEOPS_WEBHOOK_SECRET_FILE", str(secret_file(tmp_path, "hmac-key\n")))
    assert configured_secret() == "hmac-key"
    monkeypatch.setenv("SITEOPS_WEBHOOK_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(PermanentError, match=r"SITEOPS_WEBHOOK_SECRET_FILE .*absent") as caught:
        configured_secret()
    assert caught.value.system == "webhook"
    monkeypatch.delenv("SITEOPS_WEBHOOK_SECRET_FILE")
    with pytest.raises(PermanentError, match=r"SITEOPS_WEBHOOK_SECRET .*not set"):
        configured_secret()


def test_odoo_password_from_either_form_never_both(tmp_path: Path) -> None:
    from siteops.connectors.errors import PermanentError
    from siteops.connectors.odoo.config import OdooConfig

    base = {"SITEOPS_ODOO_URL": "http://odoo:8069", "SITEOPS_ODOO_DB": "prod", "SITEOPS_ODOO_LOGIN": "bot"}
    path = secret_file(tmp_path, "pw-from-file\n")
    assert OdooConfig.from_env({**base, "SITEOPS_ODOO_PASSWORD": "pw-plain"}).password == "pw-plain"
    with pytest.raises(PermanentError, match="both SITEOPS_ODOO_PASSWORD and SITEOPS_ODOO_PASSWORD_FILE") as caught:
        OdooConfig.from_env({**base, "SITEOPS_ODOO_PASSWORD": "pw-plain", "SITEOPS_ODOO_PASSWORD_FILE": str(path)})
    assert "pw-" not in str(caught.value) and caught.value.operation == "config"
    # The API key alone still does; an empty password file is an error, not "no password".
    assert OdooConfig.from_env({**base, "SITEOPS_ODOO_API_KEY": "k"}).secret == "k"
    with pytest.raises(PermanentError, match="empty"):
        OdooConfig.from_env({**base, "SITEOPS_ODOO_API_KEY": "k",
                             "SITEOPS_ODOO_PASSWORD_FILE": str(secret_file(tmp_path, "", "empty"))})


def test_ingress_tokens_switch_sources_on_and_refuse_bad_files(tmp_path: Path) -> None:
    from siteops.ingress.auth import load_secrets

    token = secret_file(tmp_path, "odoo-token\n")
    assert load_secrets({"SITEOPS_INGRESS_ODOO_TOKEN_FILE": str(token)}) == {"odoo": "odoo-token"}
    assert load_secrets({"SITEOPS_INGRESS_MESSAGES_TOKEN": " msg-token "}) == {"messages": "msg-token"}
    assert load_secrets({}) == {}
    with pytest.raises(SecretError, match=r"SITEOPS_INGRESS_ODOO_TOKEN_FILE .* empty"):
        load_secrets({"SITEOPS_INGRESS_ODOO_TOKEN_FILE": str(secret_file(tmp_path, "\n", "empty"))})
    with pytest.raises(SecretError, match="both"):
        load_secrets({"SITEOPS_INGRESS_ODOO_TOKEN_FILE": str(token), "SITEOPS_INGRESS_ODOO_TOKEN": "x"})


class Execd(Exception):
    """os.execv was reached: Flower would start (with these arguments)."""


def test_flower_gets_the_file_secret_and_refuses_a_bad_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower reads only FLOWER_BASIC_AUTH, so the file's secret is put there before the exec;
    a bad one is refused (exit 2, the variable named) and Flower never starts."""
    from typer.testing import CliRunner

    from siteops.cli import app

    def execv(*args: object) -> None:
        raise Execd(args)

    monkeypatch.setattr(os, "execv", execv)
    runner = CliRunner()
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    monkeypatch.setenv("FLOWER_BASIC_AUTH_FILE", str(tmp_path / "absent"))
    result = runner.invoke(app, ["flower"])
    assert result.exit_code == 2 and "FLOWER_BASIC_AUTH_FILE" in result.output and "absent" in result.output
    monkeypatch.setenv("FLOWER_BASIC_AUTH_FILE", str(secret_file(tmp_path, "admin:pw-Zq1\n")))
    result = runner.invoke(app, ["flower"])
    assert isinstance(result.exception, Execd) and os.environ["FLOWER_BASIC_AUTH"] == "admin:pw-Zq1"
    assert "pw-Zq1" not in repr(result.exception.args)  # the secret goes by environment, not argv
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "admin:other")
    result = runner.invoke(app, ["flower"])
    assert result.exit_code == 2 and "both" in result.output and "pw-Zq1" not in result.output
