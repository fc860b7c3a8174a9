"""Produces numbered records with acks=all until stdin closes, printing `acked N` for each
record the cluster acknowledged (written to min.insync.replicas brokers) and `done` after the
final flush. Used by tests/cluster.rs to show that nothing acknowledged is lost while a broker
dies and comes back.

usage: acked_producer.py BOOTSTRAP CA CERT KEY TOPIC [INTERVAL_SECONDS]
"""
import sys
import threading
import time

from confluent_kafka import Producer

bootstrap, ca, cert, key, topic = sys.argv[1:6]
interval = float(sys.argv[6]) if len(sys.argv) > 6 else 0.01

producer = Producer(
    {
        "bootstrap.servers": bootstrap,
        "security.protocol": "ssl",
        "ssl.ca.location": ca,
        "ssl.certificate.location": cert,
        "ssl.key.location": key,
        "acks": "all",
        "enable.idempotence": True,
        # Keep retrying through a broker's death and the leader moves that follow it.
        "message.timeout.ms": 120000,
    }
)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()


def delivered(err, msg):
    if err is None:
        print("acked %s" % msg.value().decode(), flush=True)
    else:
        print("failed %s: %s" % (msg.value().decode(), err), file=sys.stderr, flush=True)


seq = 0
while not stop.is_set():
    producer.produce(topic, value="seq-%d" % seq, callback=delivered)
    seq += 1
    producer.poll(0)
    time.sleep(interval)
left = producer.flush(120)
print("done %d produced, %d not delivered" % (seq, left), flush=True)
