"""A real nginx reverse proxy that publishes a local server under a path prefix, as many deployments do."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.servers import free_port

# An unprivileged nginx keeping every file in {tmp}; the http block is left open for the caller's part.
NGINX_HEAD = """\
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
"""
NGINX_CONF = (
    NGINX_HEAD
    + """\
    server {{
        listen 127.0.0.1:{port};
        location {prefix}/ {{
            proxy_pass {upstream}/;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
)


@contextmanager
def nginx_prefix(upstream: str, prefix: str, tmp: Path) -> Iterator[str]:
    """Serve `upstream` at http://127.0.0.1:<port><prefix>/ until the block ends; yields that URL."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, prefix=prefix, upstream=upstream))
    process = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"])
    url = f"http://127.0.0.1:{port}{prefix}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/livez").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
