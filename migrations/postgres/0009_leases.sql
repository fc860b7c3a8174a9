-- Singleton workers (the reconciler) run where they hold a lease: holder, a fencing epoch that
-- every change of holder bumps, and an expiry in milliseconds on the database's clock.
create table leases (
    name        text   primary key,
    holder      text   not null,
    epoch       bigint not null,
    expires_at  bigint not null
);
