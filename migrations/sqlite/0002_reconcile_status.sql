-- Per-tenant reconcile status. `generation` is bumped by every desired-state change, so a pass
-- only marks a tenant ready for the generation it actually applied.
create table reconcile_status (
    tenant_id        integer primary key references tenants (id) on delete cascade,
    status           text    not null check (status in ('pending', 'ready', 'error')),
    last_error       text,
    last_success_at  integer,
    generation       integer not null default 0,
    updated_at       integer not null
);
