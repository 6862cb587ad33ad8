-- clickhouse.sql -- the 4-stage strict funnel with ClickHouse windowFunnel (run by query.js via chdb).
-- {file} is replaced by the path of the JSON-lines file. Prints one line: reached[0..3].
--
-- windowFunnel(window)(timestamp, cond1..cond4) returns, per customer, the highest level k such
-- that some cond1 event is followed by cond2, ..., condk events in timestamp order, all within
-- `window` of the cond1 event (default mode: events matching no next condition are skipped, a
-- stage more than one above the level reached is ignored -- SPEC §2's strict mode). ts is in ms,
-- so the window is 1 day in ms, as funnel.yaml's conversion_window. Customers at level >= s+1
-- reached stage s. Only the 3 columns used are declared, the rest of each line is skipped.
SELECT
    countIf(level >= 1), countIf(level >= 2), countIf(level >= 3), countIf(level >= 4)
FROM
(
    SELECT windowFunnel(86400000)(ts,
               event = 'product_view', event = 'add_to_cart',
               event = 'checkout_start', event = 'purchase') AS level
    FROM file('{file}', 'JSONEachRow', 'customer_id String, ts UInt64, event String')
    GROUP BY customer_id
)
SETTINGS max_threads = {threads}
FORMAT TSV
