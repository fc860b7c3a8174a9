-- Audit outbox: a change writes its audit entry here in its own transaction, so no change can
-- commit without one. After the response, the entry moves to audit_log with the HTTP status the
-- caller got; entries left here by a crash are moved at the next start (status 0: the change
-- committed, the server stopped before answering).
create table audit_outbox (
    id         integer primary key autoincrement,
    at         integer not null,
    actor      text    not null,
    role       text    not null,
    tenant_id  integer,
    source     text    not null,
    action     text    not null,
    target     text    not null,
    detail     text    not null default ''
);
