"""structlog to stderr (stdout is the MCP stdio channel), key-value for people or JSON for machines.

Library log lines (aiohttp, uvicorn, the MCP SDK) go through the standard ``logging`` handler, which carries
``RedactCredentials``: whatever a library logs about a malformed request, no credential reaches stderr.
focus-api's own lines (structlog) never carry header values in the first place.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

# A header that carries a credential, as "Name: value", "'name': 'value'" or "(b'name', b'value')".
_CREDENTIAL_HEADER = re.compile(
    r"""(?i)((?:proxy-)?authorization|x-api-key|(?:set-)?cookie)(['"]?\s*[:=,]\s*(?-i:b)?['"]?)[^\r\n'"]*"""
)
_BEARER = re.compile(r"""(?i)\b(bearer|basic)\s+[^\s'"]+""")
# The raw bytes a parser quotes (aiohttp: "Got more than 8190 bytes when reading: b'...'", "b'Name: value'").
_BYTES_REPR = re.compile(r"""\bb(['"]).*?(?<!\\)\1""")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    text = _CREDENTIAL_HEADER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, text)
    return _BYTES_REPR.sub("b'" + REDACTED + "'", text)


class RedactCredentials(logging.Filter):
    """Rewrites each record (message, arguments and traceback text) with credentials and raw bytes removed."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self._formatter.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + record.stack_info
        record.msg, record.args = redact(text), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def configure(level: str = "info", *, json: bool | None = None) -> None:
    """``json``: JSON lines; None (the default) means JSON unless stderr is a terminal, so a person reads
    key=value lines and a log collector gets one JSON object per line."""
    if json is None:
        json = not sys.stderr.isatty()
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stderr, level=numeric, format="%(levelname)s %(name)s: %(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactCredentials())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
