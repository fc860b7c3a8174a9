-- Client quotas per tenant (issue 16). A null value takes the cluster-wide default; both null
-- with no default means no quota. The reconciler applies the effective values to every active
-- credential principal User:c<N>.<k> (Kafka quotas are per user and per broker).
create table tenant_quotas (
    tenant_id          integer primary key references tenants (id) on delete cascade,
    consumer_byte_rate integer check (consumer_byte_rate is null or consumer_byte_rate > 0),
    request_percentage real check (request_percentage is null or request_percentage > 0),
    updated_at         integer not null
);

-- The cluster-wide default: one row.
create table quota_defaults (
    id                 integer primary key check (id = 1),
    consumer_byte_rate integer check (consumer_byte_rate is null or consumer_byte_rate > 0),
    request_percentage real check (request_percentage is null or request_percentage > 0),
    updated_at         integer not null
);
