#!/usr/bin/env python3
"""Simple consumer for an outflow tenant (see TENANT below).

Prints every record of TOPIC on standard output, one per line.
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
TENANT = {{ b.tenant_label()|py }}
BOOTSTRAP_SERVERS = {{ b.brokers_csv()|py }}
# Records are access-log lines in the {{ b.access_log_format|line }} format (fields: README.txt).
TOPIC = {{ b.topic|py }}
# Consumers with the same group id share the partitions; the id must start with {{ b.group_prefix|py }}.
GROUP_ID = {{ b.group_python|py }}
KEYSTORE = os.path.join(BUNDLE_DIR, {{ b.keystore_file|py }})
CA_FILE = os.path.join(BUNDLE_DIR, {{ b.ca_file|py }})
PASSWORD = {{ b.password|py }}
# Seconds to wait at start for the brokers before giving up with a message.
CONNECT_TIMEOUT = 15
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
    try:
        # Fails early, and says why, when the brokers cannot be reached or refuse the credential.
        topic = consumer.list_topics(TOPIC, timeout=CONNECT_TIMEOUT).topics[TOPIC]
        if topic.error is not None:
            raise KafkaException(topic.error)
    except KafkaException as e:
        consumer.close()
        sys.exit(
            "consumer.py (%s): cannot read topic %s from %s: %s\n"
            "Check that this machine's address is on the allowlist and that the credential is active."
            % (TENANT, TOPIC, BOOTSTRAP_SERVERS, e)
        )
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
