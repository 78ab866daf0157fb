"""A bare aiohttp server that answers every GET with one fixed JSON body: the ceiling for REST throughput.

    .venv/bin/python bench/bare.py --port 8099 --body page.json

The suite starts it next to ``focus-api serve`` with the bytes of a real 100-row page, so both serve
bodies of the same size over the same HTTP stack, and only our work per request differs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True, help="file whose bytes every answer carries")
    args = parser.parse_args()
    body = args.body.read_bytes()

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
