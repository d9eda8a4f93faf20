"""gunicorn hooks of the admin listener: the master serves it (one per pod, covering every
worker), so it starts in `when_ready`, and each forked worker closes its inherited copy
of the listening socket (a worker must neither answer on it nor hold the port).

Nothing heavy is imported at module level: gunicorn.conf.py imports this before the
Prometheus multiprocess directory is chosen.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.admin import pod_state

log = logging.getLogger("gateway.admin")

_server: Any = None  # the master's AdminServer, once started


def on_starting(arbiter: Any) -> None:
    pod_state.reset(pod_state.use_run_dir())


def when_ready(arbiter: Any) -> None:
    """Bind and serve the admin listener; the master stops if it cannot bind."""
    global _server
    # Here, not at the top: the settings and metrics modules load only in a started master.
    from gateway.admin.control import PodControl
    from gateway.admin.server import AdminServer
    from gateway.config import Settings
    from gateway.observability.exposition import render_metrics

    settings = Settings()
    admin = settings.admin
    control = PodControl(pod_state.use_run_dir(), lambda: list(arbiter.WORKERS))
    try:
        _server = AdminServer(
            (admin.host, admin.port),
            control,
            token=admin.token.get_secret_value() if admin.token else None,
            default_timeout_s=settings.limits.drain_timeout_s,
            metrics=render_metrics,
        )
    except OSError as exc:
        arbiter.halt(reason=f"admin listener on {admin.host}:{admin.port}: {exc}", exit_status=1)
        return
    _server.start()
    if admin.token is None and admin.host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("admin listener on %s without ADMIN__TOKEN: anyone who reaches it "
                    "can drain this pod", admin.host)  # fmt: skip
    log.info("admin listener on http://%s:%d", admin.host, admin.port)


def post_fork(arbiter: Any, worker: Any) -> None:
    """In the new worker: close the listening socket it inherited from the master."""
    if _server is not None:
        _server.socket.close()


def child_exit(arbiter: Any, worker: Any) -> None:
    """A worker exited: its file no longer counts."""
    path = pod_state.run_dir()
    if path is not None:
        pod_state.forget_worker(path, worker.pid)


def on_exit(arbiter: Any) -> None:
    if _server is not None:
        _server.server_close()
    pod_state.remove_created()
