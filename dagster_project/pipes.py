"""The Pipes message reader of the Spark job steps: Dagster's file reader, whole lines only.

Dagster's ``PipesFileMessageReader`` tails the messages file a line at a time and parses what
``readline()`` returns, which near the end of the file can be a line the job has not finished
writing: a message with a chart (a PNG of tens of KB) is copied into the file a page at a time.
The reader thread then dies on the JSON error and every later message of the step is lost (the
step fails for checks it "did not yield"). This reader parses a line only once its newline is
there.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from threading import Event

import dagster as dg
from dagster._utils import tail_file  # the tailing Dagster's own reader uses

MESSAGES_FILE = "messages"


class WholeLinesFileMessageReader(dg.PipesFileMessageReader):
    """Reads the messages written to ``path``, each once its line is complete."""

    def _reader_thread(self, handler, is_resource_complete: Event) -> None:  # Dagster's hook
        try:
            for line in whole_lines(tail_file(self._path, is_resource_complete.is_set)):
                handler.handle_message(json.loads(line))
        except:  # as Dagster's own reader: report, then end the thread
            handler.report_pipes_framework_exception(f"{self.__class__.__name__} reader thread", sys.exc_info())
            raise


def whole_lines(pieces: Iterator[str]) -> Iterator[str]:
    """Join what a tail returns into whole lines: a piece without its newline is the start of a
    line still being written (a last line without one, at the end, is yielded as it is)."""
    pending = ""
    for piece in pieces:
        pending += piece
        if pending.endswith("\n"):
            yield pending
            pending = ""
    if pending.strip():
        yield pending


class WholeLinesTempFileMessageReader(dg.PipesTempFileMessageReader):
    """``PipesTempFileMessageReader`` (the subprocess client's default) on whole lines."""

    @contextmanager
    def read_messages(self, handler) -> Iterator[dict]:
        with tempfile.TemporaryDirectory() as folder:
            reader = WholeLinesFileMessageReader(
                os.path.join(folder, MESSAGES_FILE), include_stdio_in_messages=self._include_stdio_in_messages
            )
            with reader.read_messages(handler) as params:
                yield params
