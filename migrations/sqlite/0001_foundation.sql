-- Foundation: tenants, desired topics, the CA, client credentials, API tokens, dashboard sessions.
-- Times are unix seconds (UTC).

create table tenants (
    id                integer primary key check (id between 1 and 999999),
    name              text    not null check (length(name) between 1 and 100),
    created_at        integer not null,
    streaming_active  integer not null default 0,
    activated_at      integer,
    -- Last credential number handed out; credentials are c<N>.<k> with k = 1, 2, ...
    credential_seq    integer not null default 0
);

-- Desired Kafka topics; reconcilers make the cluster match these rows.
create table topics (
    name        text    primary key,
    tenant_id   integer not null references tenants (id) on delete cascade,
    kind        text    not null check (kind in ('logs', 'waf')),
    partitions  integer not null check (partitions >= 1),
    unique (tenant_id, kind)
);

create table certificate_authority (
    id          integer primary key check (id = 1),
    name        text    not null,
    algorithm   text    not null,
    cert_pem    text    not null,
    -- PKCS#8 DER sealed with the key-encryption key.
    key_sealed  blob    not null,
    created_at  integer not null,
    imported    integer not null default 0
);

create table credentials (
    tenant_id        integer not null references tenants (id) on delete cascade,
    k                integer not null,
    cn               text    not null unique,
    serial           text    not null unique,
    algorithm        text    not null,
    not_before       integer not null,
    not_after        integer not null,
    cert_pem         text    not null,
    -- PKCS#8 DER and bundle password, each sealed with the key-encryption key.
    key_sealed       blob    not null,
    password_sealed  blob    not null,
    state            text    not null default 'active' check (state in ('active', 'revoked')),
    created_at       integer not null,
    revoked_at       integer,
    primary key (tenant_id, k)
);

create table api_tokens (
    id          integer primary key autoincrement,
    name        text    not null,
    role        text    not null check (role in ('operator', 'agent', 'tenant')),
    tenant_id   integer references tenants (id) on delete cascade,
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash  text    not null unique,
    prefix      text    not null,
    created_at  integer not null,
    revoked_at  integer
);

create table sessions (
    id_hash     text    primary key,
    token_id    integer not null references api_tokens (id) on delete cascade,
    csrf        text    not null,
    created_at  integer not null,
    expires_at  integer not null
);
