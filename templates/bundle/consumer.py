#!/usr/bin/env python3
"""Simple consumer for outflow tenant {{ b.tenant_id }} ({{ b.tenant_name }}).

Prints every record of topic {{ b.topic }} on standard output, one per line.
Needs confluent-kafka (pip install confluent-kafka). Run it from anywhere:
    python3 consumer.py
It finds the certificate files next to itself; edit the settings below to move them.
"""
import os
import signal
import sys

from confluent_kafka import Consumer, KafkaException

BUNDLE_DIR = os.path.dirname(os.path.abspath(__file__))

# --- Settings (prefilled for tenant {{ b.tenant_id }}) --------------------------------
BOOTSTRAP_SERVERS = "{{ b.brokers_csv() }}"
TOPIC = "{{ b.topic }}"
# Consumers with the same group id share the partitions; the id must start with "{{ b.group_prefix }}".
GROUP_ID = "{{ b.group_python }}"
KEYSTORE = os.path.join(BUNDLE_DIR, "{{ b.keystore_file }}")
CA_FILE = os.path.join(BUNDLE_DIR, "{{ b.ca_file }}")
PASSWORD = "{{ b.password }}"
# ---------------------------------------------------------------------------------


def settings():
    """librdkafka settings: mutual TLS with the PKCS#12 keystore, CA from the PEM file."""
    return {
        "bootstrap.servers": BOOTSTRAP_SERVERS,
        "security.protocol": "SSL",
        "ssl.keystore.location": KEYSTORE,
        "ssl.keystore.password": PASSWORD,
        "ssl.ca.location": CA_FILE,
        "group.id": GROUP_ID,
        "client.id": GROUP_ID,
        # A new group starts at the oldest retained record; later runs resume where they stopped.
        "auto.offset.reset": "earliest",
    }


def main():
    consumer = Consumer(settings())
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    consumer.subscribe([TOPIC])
    try:
        while running:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            sys.stdout.write(msg.value().decode("utf-8", errors="replace") + "\n")
            sys.stdout.flush()
    finally:
        # Commits the final offsets and leaves the group cleanly.
        consumer.close()


if __name__ == "__main__":
    main()
