#!/usr/bin/env python3
"""Sample CDN access-log lines in one of outflow's access-log formats (the names of
OUTFLOW_ACCESS_LOG_FORMAT / bundle.access_log_format), one per line on standard output.

    access_log.py [--format cdn|combined_extended] [--client-id N] [--rate R | --count N] [--seed S]

--rate writes R lines per second until killed (what ops/demo/traffic.sh sends to Kafka);
--count writes N lines at once and stops (what the tests check against the bundle's grok).
The format defaults to $OUTFLOW_ACCESS_LOG_FORMAT, else cdn, as the server's does.
"""
import argparse
import os
import random
import sys
import time

PATHS = ["/", "/index.html", "/img/logo.png", "/css/site.css", "/js/app.js", "/api/v1/items?page=2",
         "/favicon.ico", "/fonts/inter.woff2", "/search?q=caf%C3%A9"]
VOD_PATHS = ["/vod/movie/index.m3u8", "/vod/movie/720p/seg-00042.ts", "/vod/live/chunk-1733.m4s",
             "/vod/movie/audio/en/seg-00007.aac"]
CONTENT_TYPES = {".html": "text/html", ".png": "image/png", ".css": "text/css", ".js": "application/javascript",
                 ".ico": "image/x-icon", ".woff2": "font/woff2", ".m3u8": "application/vnd.apple.mpegurl",
                 ".ts": "video/mp2t", ".m4s": "video/iso.segment", ".aac": "audio/aac"}
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
          "AppleCoreMedia/1.0.0.22B83 (iPhone; U; CPU OS 18_1 like Mac OS X; es_es)",
          "curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)"]
REFERERS = ["https://www.example.com/", "https://www.example.com/player?id=42", "-"]
CLIENTS = ["198.51.100.{}", "203.0.113.{}", "2001:db8::{:x}"]
POPS = ["mad1", "bcn1", "lis1", "par2", "fra1"]
COUNTRIES = ["ES", "PT", "FR", "DE", "US", "MX"]


def client(rng):
    return rng.choice(CLIENTS).format(rng.randint(1, 254))


def status_and_bytes(rng):
    status = rng.choices([200, 206, 304, 404, 500], [80, 5, 10, 4, 1])[0]
    return status, "-" if status == 304 else str(rng.randint(200, 2_000_000))


def content_type(path):
    name = path.split("?")[0]
    return next((t for ext, t in CONTENT_TYPES.items() if name.endswith(ext)), "text/html")


def cdn(rng, now, client_id):
    """The CDN's own format: a delivery line, or a VOD line with (mostly) or without the country."""
    status, size = status_and_bytes(rng)
    head = f'{client(rng)} - - [{now}]'
    version = rng.choice(["HTTP/1.1", "HTTP/2.0"])
    hitmiss = rng.choice(["hit", "miss"])
    layer = rng.choice(["L1", "L2"])
    request_time = f"{rng.random() / 20:.6f}"
    proto = rng.choice(["https", "https", "http"])
    shape = rng.choices(["delivery", "vod", "vod-without-country"], [70, 20, 10])[0]
    if shape == "delivery":
        path = rng.choice(PATHS)
        return (f'{head} "GET {path} {version}" {status} {size} "{rng.choice(AGENTS)}" {hitmiss} '
                f'"{content_type(path)}" "{layer}" {request_time} "{client_id}" "{rng.choice(REFERERS)}" '
                f'{proto} {rng.choice(COUNTRIES)}')
    path = rng.choice(VOD_PATHS)
    line = (f'{head} vod.example.com "GET {path} {version}" {status} {size} "{rng.choice(REFERERS)}" '
            f'"{rng.choice(AGENTS)}" "{content_type(path)}" "{hitmiss}" "{layer}" "{client_id}" {request_time} {proto}')
    return f"{line} {rng.choice(COUNTRIES)}" if shape == "vod" else line


def combined_extended(rng, now, client_id):
    """Combined log format, then virtual host, cache status, request time and point of presence."""
    status, size = status_and_bytes(rng)
    path = rng.choice(PATHS + VOD_PATHS)
    return (f'{client(rng)} - - [{now}] "GET {path} HTTP/{rng.choice(["1.1", "2.0"])}" {status} {size} '
            f'"{rng.choice(REFERERS)}" "{rng.choice(AGENTS)}" www.example.com '
            f'{rng.choice(["HIT", "MISS", "EXPIRED"])} {rng.random() / 10:.3f} {rng.choice(POPS)}')


FORMATS = {"cdn": cdn, "combined_extended": combined_extended}


def main():
    parser = argparse.ArgumentParser(description="Sample CDN access-log lines.")
    parser.add_argument("--format", default=os.environ.get("OUTFLOW_ACCESS_LOG_FORMAT") or "cdn")
    parser.add_argument("--client-id", default="83", help="the CDN's client id (the tenant id)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--rate", type=float, default=5.0, help="lines per second, until killed")
    group.add_argument("--count", type=int, help="write this many lines at once, then stop")
    parser.add_argument("--seed", type=int, help="repeatable output")
    args = parser.parse_args()
    line = FORMATS.get(args.format)
    if line is None:
        sys.exit(f"access_log.py: unknown access-log format {args.format!r}; use one of {', '.join(FORMATS)}")
    rng = random.Random(args.seed)
    written = 0
    while args.count is None or written < args.count:
        now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        print(line(rng, now, args.client_id), flush=args.count is None)
        written += 1
        if args.count is None:
            time.sleep(1 / args.rate)


if __name__ == "__main__":
    main()
