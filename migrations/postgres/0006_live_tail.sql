-- Operators can turn off the Streaming tab's live tail of a tenant's records (privacy).
alter table tenants add column live_tail_enabled boolean not null default true;
