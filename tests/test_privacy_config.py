"""How processes get their codec keys and their TLS to Temporal (issue 16): keys from the settings
(variables or files), else the key file `make dev` generates once; no keys, no process; TLS from the
TEMPORAL_TLS_* paths, including certificates made by deploy/tls/make-certs.sh."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.service import TLSConfig

from codec.converter import encrypted_data_converter
from codec.keys import KeyConfigError
from codec.payload import EncryptionCodec
from config import Settings
from devstack.stack import codec_endpoint, ensure_codec_keys
from devstack.temporal import dev_server_args
from tests.codec_fixtures import TEST_KEYS, key_entry
from wiring.services import codec_keyring, data_converter, tls_config

ROOT = Path(__file__).resolve().parent.parent


def bare(tmp_path: Path, **values: object) -> Settings:
    """Settings without any codec keys from the environment (the suite sets CALLBACKS_CODEC_KEYS)."""
    return Settings(**{"local_dir": tmp_path, "codec_keys": None, "codec_keys_file": None, **values})


def test_keys_come_from_the_settings_or_the_local_stacks_file_and_there_is_no_process_without(
    tmp_path: Path,
) -> None:
    assert codec_keyring(Settings(codec_keys=SecretStr(TEST_KEYS))).current_key_id == "test-k1"
    with pytest.raises(KeyConfigError, match="no codec keys"):
        codec_keyring(bare(tmp_path))

    line = ensure_codec_keys(bare(tmp_path))
    keys = tmp_path / "codec-keys"
    assert str(keys.resolve()) in line
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    ring = codec_keyring(bare(tmp_path))
    assert ring.current_key_id.startswith("dev")
    ensure_codec_keys(bare(tmp_path))  # generated once: a second start keeps the key (and the history)
    assert codec_keyring(bare(tmp_path)).current_key_id == ring.current_key_id
    assert "CALLBACKS_CODEC_KEYS" in ensure_codec_keys(Settings(local_dir=tmp_path / "other"))
    assert not (tmp_path / "other" / "codec-keys").exists()

    rotated = tmp_path / "rotated"
    rotated.write_text(f"# current first\n{key_entry('k2')}\n{key_entry('k1')}\n")
    from_file = codec_keyring(bare(tmp_path, codec_keys_file=rotated, codec_shredded="7"))
    assert (from_file.current_key_id, from_file.shredded) == ("k2", frozenset({7}))
    converter = data_converter(bare(tmp_path, codec_keys_file=rotated))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.failure_converter_class is encrypted_data_converter(from_file).failure_converter_class


def test_tls_to_temporal_from_the_settings_with_certificates_of_the_deploy_script(tmp_path: Path) -> None:
    assert tls_config(Settings()) is False
    assert tls_config(Settings(temporal_tls=True)) is True
    assert shutil.which("openssl") is not None, "deploy/tls/make-certs.sh needs openssl on the PATH"
    out = tmp_path / "certs"
    subprocess.run(
        ["sh", str(ROOT / "deploy/tls/make-certs.sh"), str(out)],
        check=True,
        capture_output=True,
        env={**os.environ, "TEMPORAL_TLS_SERVER_NAME": "temporal"},
    )
    for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key"):
        assert (out / name).exists(), name
    assert stat.S_IMODE((out / "client.key").stat().st_mode) == 0o600
    verified = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(out / "ca.pem"),
            str(out / "server.pem"),
            str(out / "client.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    config = tls_config(
        Settings(
            temporal_tls_ca=out / "ca.pem",
            temporal_tls_cert=out / "client.pem",
            temporal_tls_key=out / "client.key",
            temporal_tls_server_name="temporal",
        )
    )
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == (out / "ca.pem").read_bytes()
    assert config.client_cert == (out / "client.pem").read_bytes()
    assert config.client_private_key == (out / "client.key").read_bytes()
    assert config.domain == "temporal"
    with pytest.raises(ValueError, match="both"):
        tls_config(Settings(temporal_tls_cert=out / "client.pem"))


def test_make_dev_points_the_ui_at_the_codec_server() -> None:
    settings = Settings(api_host="0.0.0.0", api_port=8000)
    assert codec_endpoint(settings) == "http://127.0.0.1:8000/codec"
    args = dev_server_args(
        port=7233, ui_port=8233, db_filename=None, ui_codec_endpoint=codec_endpoint(settings)
    )
    assert args[args.index("--ui-codec-endpoint") + 1] == "http://127.0.0.1:8000/codec"
    assert "--ui-codec-endpoint" not in dev_server_args(port=7233, ui_port=None, db_filename=None)
    # The UI's origins are the ones the codec server answers with CORS.
    assert "http://127.0.0.1:8233" in Settings().codec_origins()
