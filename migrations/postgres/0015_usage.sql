-- Usage metering (issue 16). Times are unix seconds (UTC), hour starts aligned to 3600.
-- No foreign key to tenants: what a deleted tenant used stays billable.

-- The last cumulative value of each broker's per-topic counter (BytesOutPerSec, BytesInPerSec,
-- MessagesInPerSec): a report adds `value - last`, or `value` after the broker restarted.
create table usage_counters (
    broker_id   text    not null,
    topic       text    not null,
    counter     text    not null check (counter in ('bytes_out', 'bytes_in', 'records_in')),
    value       bigint  not null check (value >= 0),
    primary key (broker_id, topic, counter)
);

-- The newest scrape each broker reported: a report not newer is a retry and changes nothing.
-- `started_at_ms` is when the broker process started: a report with another start time comes
-- from a restarted broker, whose counters began again at zero.
create table usage_reports (
    broker_id       text    primary key,
    scraped_at_ms   bigint  not null,
    started_at_ms   bigint,
    received_at     bigint  not null
);

-- Committed offsets of the tenants' consumer groups as last seen: records delivered are their
-- forward progress.
create table usage_group_offsets (
    group_id    text    not null,
    topic       text    not null,
    partition   bigint  not null,
    committed   bigint  not null,
    primary key (group_id, topic, partition)
);

-- Running totals of the hours not closed yet, per tenant.
create table usage_open (
    tenant_id       bigint  not null,
    hour_start      bigint  not null,
    bytes_out       bigint  not null default 0,
    records_out     bigint  not null default 0,
    bytes_in        bigint  not null default 0,
    records_in      bigint  not null default 0,
    outflow_bytes   bigint  not null default 0,
    primary key (tenant_id, hour_start)
);

-- Closed hours, written by the metering worker. `bytes_out` is what the brokers sent for the
-- tenant's topics; `outflow_bytes` is outflow's own reads of them, billed bytes are the
-- difference.
create table usage_hourly (
    tenant_id       bigint  not null,
    hour_start      bigint  not null,
    bytes_out       bigint  not null,
    records_out     bigint  not null,
    bytes_in        bigint  not null,
    records_in      bigint  not null,
    outflow_bytes   bigint  not null,
    closed_at       bigint  not null,
    primary key (tenant_id, hour_start)
);
create index usage_hourly_by_hour on usage_hourly (hour_start);
