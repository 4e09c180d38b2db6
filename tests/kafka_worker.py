"""A consumer-group member as its own process, for the Kafka tests to start, kill and
restart: `python tests/kafka_worker.py --bootstrap H:P --topic T --group G --db URL`.

Logs go to stderr (the tests read the `assigned partitions=` lines); on a clean stop
(SIGTERM/SIGINT) the final counters are printed to stdout as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from datetime import timedelta

from consumers.kafka_consumer import ConsumerConfig, LedgerConsumer, install_stop_signals
from domain.contract import IntakeLimits
from service.store import open_ledger


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--dead-letter-topic")
    parser.add_argument("--max-records", type=int, default=500)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=1000)
    parser.add_argument("--max-future-skew", type=float, default=1.0, help="days")
    parser.add_argument(
        "--pause-s", type=float, default=0.0, help="sleep after each poll (a slow consumer)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()
    install_stop_signals(stop)
    config = ConsumerConfig(
        bootstrap_servers=args.bootstrap,
        topic=args.topic,
        group_id=args.group,
        dead_letter_topic=args.dead_letter_topic,
        max_records=args.max_records,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        poll_timeout_ms=200,
        stats_interval_s=2.0,
        limits=IntakeLimits(max_future_skew=timedelta(days=args.max_future_skew)),
    )
    ledger = open_ledger(args.db)
    try:
        consumer = LedgerConsumer(ledger, config)
        if args.pause_s > 0:
            with consumer:
                while not stop.is_set():
                    consumer.poll_once(stop)
                    stop.wait(args.pause_s)
        else:
            consumer.run(stop)
    finally:
        ledger.close()
    print(json.dumps(consumer.stats.fields()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
