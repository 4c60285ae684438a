-- The per-object lease (src/load/lease.ts): at most one run of a tenant's
-- object writes at a time. A lease is a row, not a session lock, so that it
-- holds through a transaction-mode connection pooler, where a client's
-- transactions land on different server connections. It is taken, renewed
-- and checked in short transactions, and expires when its holder stops
-- renewing it (a killed loader); a run's writes commit only while its token
-- is still the row's (the fence in every write transaction).
-- Numbered after the issue that brought it: 0004 was taken meanwhile and the
-- numbers after it are reserved for other work. IF NOT EXISTS: a renumbered
-- copy of this file applied again changes nothing.

CREATE TABLE IF NOT EXISTS {{schema}}._pgland_leases (
  provider      text NOT NULL,
  customer_id   text NOT NULL,
  object        text NOT NULL,
  token         uuid NOT NULL,          -- the holder's run id
  expires_at    timestamptz NOT NULL,   -- on the server's clock
  taken_at      timestamptz NOT NULL DEFAULT now(),
  -- Set only on a direct connection: the holder's backend, so that the next
  -- run need not wait for the expiry of a loader whose connection is gone.
  holder_pid    integer,
  holder_start  timestamptz,
  PRIMARY KEY (provider, customer_id, object)
);
