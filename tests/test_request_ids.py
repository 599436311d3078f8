"""Request ids: the caller's own when it is a plain token, else a fresh one unique across processes."""

from __future__ import annotations

import os
import re

from monitoring.context import new_request_id, request_id_from


def test_fresh_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_process_draws_ids_of_its_own() -> None:
    parent = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:16] != parent[:16], "the child kept the parent's random prefix"


def test_the_callers_plain_token_is_kept_anything_else_replaced() -> None:
    assert request_id_from([(b"x-request-id", b"abc-123.x:y_z")]) == "abc-123.x:y_z"
    for unsafe in (b"has space", b"a" * 65, b"new\nline", b""):
        replaced = request_id_from([(b"x-request-id", unsafe)])
        assert re.fullmatch(r"[0-9a-f]{32}", replaced), unsafe
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_from([]))
