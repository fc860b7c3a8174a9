-- Which replica staged an outbox entry: a starting (or any live) replica moves only the entries
-- of replicas that stopped heartbeating, never those of a live replica's requests in flight.
alter table audit_outbox add column replica text not null default '';
