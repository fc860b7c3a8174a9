# Shared by broker.sh (one node) and cluster.sh (three nodes): fetching Apache Kafka, the
# security settings every listener uses, logging, and starting a node. Sourced, not run.
# Expects: $here (this directory), log().

kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
lib="${OUTFLOW_CACHE:-$HOME/.cache/outflow}/kafka-$kafka_version/lib"
# The Prometheus JMX exporter runs inside each broker (a Java agent); its jar is kept apart from
# the broker's classpath, cached by version like the Kafka jars.
jmx_exporter_version=1.0.1
jmx_exporter_dir="${OUTFLOW_CACHE:-$HOME/.cache/outflow}/jmx-exporter-$jmx_exporter_version"
jmx_exporter_jar="$jmx_exporter_dir/jmx_prometheus_javaagent-$jmx_exporter_version.jar"

fetch_kafka() {
  # Maven resolves the broker from Maven Central into ~/.m2; the copy is cached by version.
  if [[ ! -f "$lib/.complete" ]]; then
    log "fetching Apache Kafka $kafka_version with Maven"
    mkdir -p "$lib"
    mvn -q -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$lib" >&2
    touch "$lib/.complete"
  fi
  if [[ ! -f "$jmx_exporter_jar" ]]; then
    log "fetching the Prometheus JMX exporter $jmx_exporter_version with Maven"
    mkdir -p "$jmx_exporter_dir"
    mvn -q -f "$here/pom.xml" dependency:copy \
      -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$jmx_exporter_version" \
      -DoutputDirectory="$jmx_exporter_dir" >&2
  fi
}

# write_metrics_config NODE_DIR: the exporter's rules. Only the per-topic byte and record
# counters outflow meters (a few lines per topic instead of the broker's ten thousand), and
# their `Count`: cumulative since the broker started, exact, unlike the windowed rates; and the
# broker's start time. (The exporter adds its own JVM and process metrics: no tenant data.)
write_metrics_config() {
  cat > "$1/metrics.yaml" <<'EOF2'
lowercaseOutputName: true
includeObjectNames:
  - "kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec,topic=*"
  - "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=*"
  - "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=*"
  - "kafka.server:type=app-info"
rules:
  - pattern: 'kafka.server<type=BrokerTopicMetrics, name=(BytesOutPerSec|BytesInPerSec|MessagesInPerSec), topic=(.+)><>Count'
    # A counter: the exporter appends `_total`, e.g. kafka_server_brokertopicmetrics_bytesoutpersec_total.
    name: kafka_server_brokertopicmetrics_$1
    type: COUNTER
    labels:
      topic: "$2"
  # When the broker started: the agent reports it so that the server sees a restart (every
  # counter back at zero) even when a counter has grown past its old value by the next scrape.
  - pattern: 'kafka.server<type=app-info><>start-time-ms'
    name: kafka_server_app_info_start_time_ms
    type: GAUGE
EOF2
}

# metrics_agent NODE_DIR PORT: the JVM option that serves NODE_DIR/metrics.yaml's counters on
# loopback PORT (never on a public address: the counters name every tenant's topic).
metrics_agent() {
  echo "-javaagent:$jmx_exporter_jar=127.0.0.1:$2:$1/metrics.yaml"
}

# outflow's CLI with the CA that signs every certificate of the kit.
outflow_ca() {
  local bin=${OUTFLOW_BIN:-$root/target/debug/outflow}
  local data=${OUTFLOW_DATA_DIR:-$root/data}
  [[ -x "$bin" ]] || { log "outflow binary not found at $bin (build it or set OUTFLOW_BIN)"; exit 1; }
  "$bin" --data-dir "$data" ca "$@" >&2
}

# issue_service_certs CERTS: outflow's own admin identity and the demo/test log producer.
issue_service_certs() {
  outflow_ca issue-client --cn outflow --out "$1"
  outflow_ca issue-client --cn edge-producer --out "$1"
}

# server_keystore CERTS NAME PASSWORD: a PKCS#12 keystore from CERTS/NAME.{crt,key}.pem.
server_keystore() {
  openssl pkcs12 -export -in "$1/$2.crt.pem" -inkey "$1/$2.key.pem" -certfile "$1/ca.pem" \
    -name kafka-broker -out "$1/$2.keystore.p12" -passout "pass:$3"
}

# common_properties KEYSTORE PASSWORD CA: TLS with client certificates on every listener,
# certificate CN -> principal, deny by default, topics only from outflow.
common_properties() {
  cat <<EOF2
ssl.client.auth=required
ssl.keystore.type=PKCS12
ssl.keystore.location=$1
ssl.keystore.password=$2
ssl.key.password=$2
ssl.truststore.type=PEM
ssl.truststore.location=$3
ssl.endpoint.identification.algorithm=https

# Certificate subject CN=c83.1 -> principal User:c83.1 (one principal per credential).
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
# The brokers themselves, outflow (provisions topics and ACLs) and the demo/test log producer.
# Production grants producers WRITE ACLs instead of super-user rights.
super.users=User:kafka-broker;User:outflow;User:edge-producer
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
EOF2
}

write_log4j() {
  cat > "$1/log4j.properties" <<'EOF2'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF2
}

# format_storage NODE_DIR CLUSTER_ID: once per node, before its first start.
format_storage() {
  if [[ ! -f "$1/data/meta.properties" ]]; then
    java -cp "$lib/*" -Dlog4j.configuration="file:$1/log4j.properties" \
      kafka.tools.StorageTool format -t "$2" -c "$1/server.properties" >&2
  fi
}

random_cluster_id() {
  java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1
}

# start_node NODE_DIR JVM_OPTS [LAUNCHER...]: starts kafka.Kafka with NODE_DIR/server.properties,
# logging to NODE_DIR/broker.log, its pid in NODE_DIR/broker.pid. A LAUNCHER such as
# `ip netns exec NS` runs it elsewhere (it execs, so the pid stays the JVM's).
start_node() {
  local node=$1 jvm=$2
  shift 2
  : > "$node/broker.log"
  # setsid: the broker outlives this script and is not hit by the caller's Ctrl-C.
  setsid "$@" java $jvm -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$node/log4j.properties" \
    -cp "$lib/*" kafka.Kafka "$node/server.properties" >> "$node/broker.log" 2>&1 < /dev/null &
  echo $! > "$node/broker.pid"
}

node_running() { [[ -f "$1/broker.pid" ]] && kill -0 "$(cat "$1/broker.pid")" 2>/dev/null; }

# wait_started NODE_DIR: until the node logs that it serves, failing if it exits or takes 120 s.
wait_started() {
  local deadline=$((SECONDS + 120))
  until grep -q "Kafka Server started" "$1/broker.log"; do
    if ! node_running "$1"; then
      log "broker exited during start; last log lines of $1/broker.log:"
      tail -n 40 "$1/broker.log" >&2
      exit 1
    fi
    if ((SECONDS > deadline)); then
      log "broker did not start within 120 s; last log lines of $1/broker.log:"
      tail -n 40 "$1/broker.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# stop_pid PIDFILE [SIGNAL]: TERM (or SIGNAL), then KILL after 20 s; removes PIDFILE.
stop_pid() {
  local file=$1 signal=${2:-TERM} pid
  [[ -f "$file" ]] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$file: process $pid did not stop in 20 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}
