-- Sign-in attempts per account and per address, shared by every replica: an attempt is counted
-- before its password is checked and taken back when the check could not run or succeeded.
-- A row per key serializes the attempts on that key (it is locked first).
create table login_keys (
    key  text primary key
);
create table login_attempts (
    id   integer primary key autoincrement,
    key  text not null references login_keys (key) on delete cascade,
    -- Milliseconds on the database clock.
    at   integer not null
);
create index login_attempts_key on login_attempts (key, at);
