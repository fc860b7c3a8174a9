-- IP allowlists pushed to every broker's firewall.

-- One row per tenant entry, stored normalised ("198.51.100.0/24", "2001:db8::/48").
create table allowlist_entries (
    id             integer primary key autoincrement,
    tenant_id      integer not null references tenants (id) on delete cascade,
    cidr           text    not null,
    note           text    not null default '',
    -- The allowlist version whose change added this entry: a broker that applied this version
    -- (or a later one) enforces it.
    added_version  integer not null,
    created_at     integer not null,
    unique (tenant_id, cidr)
);

-- The one global allowlist version; every change to any tenant's list bumps it once.
create table allowlist_version (
    id       integer primary key check (id = 1),
    version  integer not null
);
insert into allowlist_version (id, version) values (1, 0);

-- Deleting a tenant removes its entries (cascade); that is a change the brokers must apply too.
create trigger allowlist_tenant_deleted before delete on tenants
when exists (select 1 from allowlist_entries where tenant_id = old.id)
begin
    update allowlist_version set version = version + 1 where id = 1;
end;

-- What each broker's firewall agent last reported.
create table firewall_agents (
    broker_id        text    primary key,
    applied_version  integer not null,
    -- Addresses and ranges in the applied ruleset (after merging).
    applied_entries  integer not null default 0,
    last_error       text,
    last_contact_at  integer not null,
    -- The agent token that reported, for the audit trail.
    token_name       text    not null
);
