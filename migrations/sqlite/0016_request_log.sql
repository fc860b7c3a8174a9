-- Request-log windows (docs/usage.md): an operator turns on Kafka's per-request log on one
-- broker for a bounded time; that broker's agent reports the lines summarised by principal,
-- client address and API.
create table request_log_windows (
    id          integer primary key autoincrement,
    broker_id   text    not null,
    node_id     integer  not null,
    started_at  integer  not null,
    until       integer  not null,
    -- The logger's level before, set back at the end (null: it had none of its own).
    previous_level  text,
    -- Set once the broker's logger was turned back (by hand or at `until`).
    ended_at    integer
);
create index request_log_windows_by_broker on request_log_windows (broker_id, id);

create table request_log_counts (
    window_id       integer  not null references request_log_windows (id) on delete cascade,
    principal       text    not null,
    client_address  text    not null,
    api             text    not null,
    requests        integer  not null,
    primary key (window_id, principal, client_address, api)
);
