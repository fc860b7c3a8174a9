-- Server replicas and their heartbeats (milliseconds on the database clock), so operators see
-- which processes serve and which holds each lease.
create table replicas (
    id            text    primary key,
    address       text    not null,
    version       text    not null,
    started_at    bigint  not null,
    heartbeat_at  bigint  not null
);
