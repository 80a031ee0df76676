"""The deployment files in deploy/ agree with each other and with the app (docs/deploy.md)."""

from __future__ import annotations

import os
import re
import runpy
from configparser import ConfigParser
from pathlib import Path

from core.config import Config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def nginx() -> str:
    return (DEPLOY / "nginx" / "moralcredit.conf").read_text(encoding="utf-8")


def unit(name: str) -> ConfigParser:
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(DEPLOY / "systemd" / name, encoding="utf-8")
    return parser


def test_gunicorn_serves_loopback_to_nginx_and_times_out_before_nginx_gives_up():
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert settings["bind"] == "127.0.0.1:8000" and "server 127.0.0.1:8000;" in nginx()
    assert settings["worker_class"] == "gthread" and not settings["preload_app"]
    assert settings["forwarded_allow_ips"] == "127.0.0.1,::1"
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", nginx()).group(1))
    assert settings["timeout"] < read_timeout


def test_nginx_speaks_tls_redirects_http_and_passes_what_the_app_trusts():
    site = nginx()
    assert "listen 443 ssl" in site and "return 301 https://$host$request_uri;" in site
    for header in ("Host $host", "X-Forwarded-Proto $scheme", "X-Forwarded-For $remote_addr"):
        assert f"proxy_set_header {header};" in site
    body_mb = int(re.search(r"client_max_body_size (\d+)m;", site).group(1))
    assert body_mb * 1024 * 1024 >= Config.IMPORT_MAX_BYTES


def test_the_units_run_files_that_exist_with_the_environment_file():
    commands = {
        "moralcredit.service": "gunicorn -c deploy/gunicorn.conf.py wsgi:app",
        "moralcredit-scheduler.service": "flask --app wsgi scheduler run",
        "moralcredit-backup.service": "deploy/backup.sh /var/backups/moralcredit",
    }
    for name, command in commands.items():
        service = unit(name)["Service"]
        assert command in service["ExecStart"] and service["EnvironmentFile"] == "/etc/moralcredit/env"
        assert service["User"] == "moralcredit" and service["WorkingDirectory"] == "/srv/moralcredit"
    assert unit("moralcredit-backup.timer")["Timer"]["OnCalendar"] == "*-*-* 02:30:00"
    assert (ROOT / "wsgi.py").exists() and os.access(DEPLOY / "backup.sh", os.X_OK)
