"""Log pseudonyms and the CLI's error-to-exit-code mapping."""

from __future__ import annotations

import json
import logging

import pytest

from service.cli.main import EXIT_OK, build_parser, main
from service.logs import JsonFormatter, hash_uid


def test_hash_uid_is_stable_short_and_not_the_uid() -> None:
    uid = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"
    assert hash_uid(uid) == hash_uid(uid)
    assert hash_uid(uid) != hash_uid(uid + "1")
    assert len(hash_uid(uid)) == 12 and uid not in hash_uid(uid)
    assert hash_uid(None) == "none"


def test_json_formatter_emits_one_object_with_fields() -> None:
    record = logging.LogRecord("radtranslate.test", logging.INFO, __file__, 1, "read %s", ("series",), None)
    record.fields = {"series": hash_uid("1.2.3")}
    payload = json.loads(JsonFormatter().format(record))
    assert payload["message"] == "read series" and payload["series"] == hash_uid("1.2.3")


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == EXIT_OK
    assert "radtranslate 0.1.0" in capsys.readouterr().out
    assert "COMMAND" in build_parser().format_help()
