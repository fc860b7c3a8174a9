-- Alerts (issue 15): channels a tenant (or, with tenant_id null, the operators) sends alerts to,
-- rules evaluated by the alert evaluator, the current state of each rule's instances, their
-- history, and the delivery outbox. Times are unix seconds, delivery times unix milliseconds.

create table alert_channels (
    id              integer primary key autoincrement,
    tenant_id       integer references tenants (id) on delete cascade,
    kind            text    not null check (kind in ('webhook', 'slack', 'alertmanager', 'alertmanager_api')),
    name            text    not null check (length(name) between 1 and 100),
    -- The destination URL, sealed with the key-encryption key (a Slack URL is a secret).
    url_sealed      blob  not null,
    -- Webhook signing secret (whsec_…), sealed; after a rotation the previous one keeps signing
    -- alongside until previous_until.
    secret_sealed           blob,
    previous_secret_sealed  blob,
    previous_until          integer,
    enabled         integer  not null default 1,
    -- Why the channel was disabled by the delivery worker (a 410 from the receiver).
    disabled_reason text    not null default '',
    created_at      integer   not null
);
create index alert_channels_tenant on alert_channels (tenant_id);

create table alert_rules (
    id           integer primary key autoincrement,
    tenant_id    integer references tenants (id) on delete cascade,
    kind         text    not null check (kind in ('waf_burst', 'lag_above', 'group_stalled',
                 'credential_expiring', 'allowlist_unapplied', 'agent_stale', 'dlq_growth')),
    name         text    not null check (length(name) between 1 and 100),
    -- The kind's parameters as JSON, validated by the API.
    params       text    not null default '{}',
    repeat_secs  integer   not null default 14400 check (repeat_secs >= 600),
    muted_until  integer,
    -- Created with the tenant (credential expiry, stalled consumers).
    is_default   integer  not null default 0,
    -- Bumped on every change: the evaluator drops state kept for an older version.
    version      integer   not null default 1,
    created_at   integer   not null
);
create index alert_rules_tenant on alert_rules (tenant_id);

create table alert_rule_channels (
    rule_id     integer not null references alert_rules (id) on delete cascade,
    channel_id  integer not null references alert_channels (id) on delete cascade,
    primary key (rule_id, channel_id)
);

-- One row per (rule, instance): the instance's labels hash to its fingerprint.
create table alert_instances (
    rule_id          integer  not null references alert_rules (id) on delete cascade,
    fingerprint      text   not null,
    labels           text   not null,
    state            text   not null check (state in ('pending', 'firing', 'resolved')),
    value            real not null default 0,
    pending_since    integer,
    starts_at        integer,
    ends_at          integer,
    -- When a firing/repeat notification was last queued (repeat_secs counts from here).
    notified_at      integer,
    -- When the resolve condition started to hold (hysteresis).
    clearing_since   integer,
    updated_at       integer  not null,
    primary key (rule_id, fingerprint)
);

create table alert_events (
    id           integer primary key autoincrement,
    rule_id      integer not null references alert_rules (id) on delete cascade,
    tenant_id    integer,
    fingerprint  text   not null,
    at           integer  not null,
    kind         text   not null check (kind in ('pending', 'firing', 'repeat', 'resolved')),
    value        real not null default 0,
    labels       text   not null
);
create index alert_events_rule on alert_events (rule_id, id);
create index alert_events_tenant on alert_events (tenant_id, id);

-- The delivery outbox: one row per (message, channel). The body is rendered when queued, so
-- retries send the same bytes under the same webhook-id.
create table alert_deliveries (
    id               integer primary key autoincrement,
    channel_id       integer not null references alert_channels (id) on delete cascade,
    tenant_id        integer,
    rule_id          integer,
    webhook_id       text   not null,
    event_type       text   not null,
    body             text   not null,
    created_at       integer  not null,
    next_attempt_at  integer  not null,
    attempts         integer  not null default 0,
    state            text   not null default 'pending' check (state in ('pending', 'delivered', 'failed', 'gave_up')),
    last_status      integer,
    last_error       text   not null default '',
    last_latency_ms  integer,
    finished_at      integer
);
create index alert_deliveries_due on alert_deliveries (state, next_attempt_at);
create index alert_deliveries_channel on alert_deliveries (channel_id, id);
