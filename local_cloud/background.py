"""A daemon thread that repeats one step until stopped, surviving a failed step.

Shared by the local cloud's runners that do what AWS does on its own clock (firing schedules,
evaluating alarms). A subclass sets :attr:`thread_name` and :attr:`what` (for log lines) and
implements :meth:`step` and :meth:`_wait_seconds`; it calls :meth:`_init_background` in its
``__init__``.
"""

from __future__ import annotations

import logging
import threading

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)


class BackgroundRunner:
    thread_name = "turnout-background"
    what = "background runner"

    def _init_background(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        raise NotImplementedError

    def _wait_seconds(self) -> float:
        raise NotImplementedError

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except (ClientError, BotoCoreError) as exc:
                log.warning("%s: %s", self.what, exc)
            except Exception:  # noqa: BLE001 - the runner must outlive one bad step
                log.exception("%s: unexpected failure", self.what)
            self._stop.wait(self._wait_seconds())
