"""``[logging]``: the worker's log configuration, built as a ``logging.config.dictConfig``.

Console and ``worker.log`` (size-based rotation by default; ``rotation =
"watched"`` for an external logrotate, see ``deploy/logrotate.conf``). The level
is ``[worker] log_level`` (or ``WORKER_LOG_LEVEL`` / ``--log-level``). Every
record carries the job id and task name when it was emitted inside a job
(:class:`runner.logcapture.JobContextFilter`); the database sink
(:mod:`runner.worker.log_sink`) is attached beside these handlers by the worker.

Reloaded on SIGHUP: level, format, file, rotation and the sink's caps.
"""

from __future__ import annotations

import logging
import logging.config
import logging.handlers
from pathlib import Path
from typing import Any

from runner.config import Settings
from runner.errors import ConfigError
from runner.files import DEFAULT_FILE_MODE, create_private
from runner.printable import block, one_line
from runner.service_sections import LoggingSection
from runner.worker.log_capture import original_stream


def logging_settings(settings: Settings) -> LoggingSection:
    """The ``[logging]`` section (typed and validated when the settings were loaded)."""
    return settings.logging


def log_file_path(settings: Settings, section: LoggingSection) -> Path | None:
    """Absolute path of the log file, or None when file logging is off."""
    if not section.file:
        return None
    path = Path(section.file).expanduser()
    if not path.is_absolute() and settings.path:
        path = Path(settings.path).resolve().parent / path
    return path.absolute()


def build_config(settings: Settings, section: LoggingSection) -> dict[str, Any]:
    """The ``dictConfig`` dictionary for these settings."""
    level = settings.worker.log_level.upper()
    handlers: dict[str, dict[str, Any]] = {}
    if section.console:
        handlers["console"] = {"class": "logging.StreamHandler", "formatter": "plain",
                               "filters": ["job", "console"],
                               "stream": original_stream("stderr")}
    path = log_file_path(settings, section)
    if path is not None:
        # errors: text that is not UTF-8 (a file name from os.fsdecode) is escaped, not lost.
        common = {"formatter": "plain", "filters": ["job"], "filename": str(path),
                  "encoding": "utf-8", "errors": "backslashreplace", "delay": True,
                  "file_mode": settings.runner.file_mode_bits}
        if section.rotation == "size":
            handlers["file"] = {"class": f"{__name__}.PrivateRotatingFileHandler",
                                "maxBytes": section.max_bytes,
                                "backupCount": section.backup_count, **common}
        elif section.rotation == "watched":
            handlers["file"] = {"class": f"{__name__}.PrivateWatchedFileHandler", **common}
        else:
            handlers["file"] = {"class": f"{__name__}.PrivateFileHandler", **common}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"job": {"()": "runner.worker.log_capture.JobContextFilter"},
                    "console": {"()": f"{__name__}.ConsoleFilter"}},
        "formatters": {"plain": {"()": f"{__name__}.LineFormatter", "fmt": section.format}},
        "handlers": handlers,
        "loggers": {"huey": {"level": "DEBUG" if level == "DEBUG" else "WARNING"}},
        "root": {"level": level, "handlers": list(handlers)},
    }


def configure_logging(settings: Settings, *,
                      extra_handlers: tuple[logging.Handler, ...] = ()) -> LoggingSection:
    """Apply ``[logging]``: replaces the root handlers, then adds ``extra_handlers``.

    Raises:
        ConfigError: ``[logging]`` is invalid, or the log file cannot be opened.
    """
    section = logging_settings(settings)
    path = log_file_path(settings, section)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not create_private(path, settings.runner.file_mode_bits):
                with path.open("a", encoding="utf-8"):
                    pass
        except OSError as exc:
            raise ConfigError(f"[logging] file: cannot write {path} ({exc.strerror})") from None
    logging.config.dictConfig(build_config(settings, section))
    root = logging.getLogger()
    for handler in extra_handlers:
        root.addHandler(handler)
    return section


class ConsoleFilter(logging.Filter):
    """Keeps records logged with ``extra={"console": False}`` off the console: lines the
    program prints there itself (the error it exits with), which the log file keeps."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "console", True) is not False


class LineFormatter(logging.Formatter):
    """One record, one line: control characters in the message are escaped, and
    tracebacks are indented, so text from a job can never forge a record. A record's
    ``detail`` (``extra``: lines to show under it) is indented the same way."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + block(record.exc_text)
        if record.stack_info:
            text += "\n" + block(self.formatStack(record.stack_info))
        detail = getattr(record, "detail", None)
        if detail:
            text += "\n" + block(detail)
        return text


class _PrivateFile:
    """Opens its file with ``[runner] file_mode`` when it creates it (also after a rotation)."""

    baseFilename: str  # noqa: N815 - logging's name
    file_mode: int = DEFAULT_FILE_MODE

    def _open(self):  # noqa: ANN202 - a text stream, as logging's own
        create_private(self.baseFilename, self.file_mode)
        return super()._open()  # type: ignore[misc]


class PrivateFileHandler(_PrivateFile, logging.FileHandler):
    """``logging.FileHandler`` creating a private file."""

    def __init__(self, *args: Any, file_mode: int = DEFAULT_FILE_MODE, **kwargs: Any) -> None:
        self.file_mode = file_mode
        super().__init__(*args, **kwargs)


class PrivateRotatingFileHandler(_PrivateFile, logging.handlers.RotatingFileHandler):
    """``RotatingFileHandler`` whose new files are private too."""

    def __init__(self, *args: Any, file_mode: int = DEFAULT_FILE_MODE, **kwargs: Any) -> None:
        self.file_mode = file_mode
        super().__init__(*args, **kwargs)


class PrivateWatchedFileHandler(_PrivateFile, logging.handlers.WatchedFileHandler):
    """``WatchedFileHandler`` reopening a private file after an external rotation."""

    def __init__(self, *args: Any, file_mode: int = DEFAULT_FILE_MODE, **kwargs: Any) -> None:
        self.file_mode = file_mode
        super().__init__(*args, **kwargs)

