-- Accounts: users with roles, per-user API tokens, sessions of users or tokens, partition
-- requests from tenants, and the append-only audit log.

create table users (
    id                 integer primary key autoincrement,
    email              text    not null unique collate nocase check (length(email) between 3 and 254),
    role               text    not null check (role in ('operator', 'tenant')),
    tenant_id          integer references tenants (id) on delete cascade,
    -- argon2id PHC string; null until the invitation is accepted.
    password_hash      text,
    -- SHA-256 of the one-time invitation secret (shown once, in the invitation link).
    invite_hash        text    unique,
    invite_expires_at  integer,
    disabled_at        integer,
    created_at         integer not null,
    check ((role = 'tenant') = (tenant_id is not null))
);

-- Tokens created by a user belong to it: disabling the user disables them.
alter table api_tokens add column user_id integer references users (id) on delete cascade;

-- A session belongs to a user (password sign-in) or to a token (token sign-in).
drop table sessions;
create table sessions (
    id_hash     text    primary key,
    user_id     integer references users (id) on delete cascade,
    token_id    integer references api_tokens (id) on delete cascade,
    csrf        text    not null,
    created_at  integer not null,
    expires_at  integer not null,
    check ((user_id is null) != (token_id is null))
);

-- Tenants cannot change partitions themselves; they ask, operators see the request.
create table partition_requests (
    id            integer primary key autoincrement,
    tenant_id     integer not null references tenants (id) on delete cascade,
    partitions    integer not null check (partitions between 1 and 1000),
    note          text    not null default '',
    requested_by  text    not null,
    created_at    integer not null
);

-- No foreign keys: entries outlive the tenants, users and tokens they mention.
create table audit_log (
    id         integer primary key autoincrement,
    at         integer not null,
    actor      text    not null,
    role       text    not null,
    tenant_id  integer,
    source     text    not null,
    action     text    not null,
    target     text    not null,
    outcome    text    not null check (outcome in ('success', 'denied', 'failure')),
    status     integer not null,
    detail     text    not null default ''
);
create index audit_log_tenant on audit_log (tenant_id, id);
create index audit_log_at on audit_log (at);

create trigger audit_log_no_update before update on audit_log
begin
    select raise(abort, 'the audit log is append-only');
end;
create trigger audit_log_no_delete before delete on audit_log
begin
    select raise(abort, 'the audit log is append-only');
end;
