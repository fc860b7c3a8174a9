-- An agent token is bound to the one broker it reports for, so an agent cannot report for
-- another broker. Tokens created before this have none: their reports are refused until the
-- operator replaces them (docs/decisions.md).
alter table api_tokens add column broker_id text check (broker_id is null or role = 'agent');
