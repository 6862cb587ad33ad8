-- duckdb.sql -- the 4-stage strict funnel in DuckDB (run by query.js). {file} is the JSON-lines
-- file. Result: one row, reached[0..3].
--
-- One GROUP BY customer, then the strict-mode chain per customer (SPEC §2, ClickHouse windowFunnel
-- default mode): t0 = the customer's first product_view; t1 = its first add_to_cart after t0;
-- t2 = its first checkout_start after t1; t3 = its first purchase after t2. Stage s is reached
-- iff t_s exists. Earliest-match is what a strict journey does (it advances on the first event of
-- the next stage and ignores the others), so this is exact -- unlike first times per event type
-- compared with each other (wrong_duckdb.sql), which miss a cart that follows a stray earlier one.
-- The later stages' timestamps are gathered as lists (no ORDER BY needed) and filtered after the
-- aggregation. The conversion window (1 day) is longer than the data's span, so it is not tested;
-- only the 3 columns used are declared, the rest of each line is skipped.
SET threads = {threads};
SELECT count(t0), count(t1), count(t2), count(t3)
FROM (
  SELECT t0, t1, t2, list_min(list_filter(l3, lambda x: x > t2)) AS t3
  FROM (
    SELECT t0, t1, list_min(list_filter(l2, lambda x: x > t1)) AS t2, l3
    FROM (
      SELECT t0, list_min(list_filter(l1, lambda x: x > t0)) AS t1, l2, l3
      FROM (
        SELECT min(ts) FILTER (event = 'product_view') AS t0,
               list(ts) FILTER (event = 'add_to_cart') AS l1,
               list(ts) FILTER (event = 'checkout_start') AS l2,
               list(ts) FILTER (event = 'purchase') AS l3
        FROM read_ndjson('{file}',
                         columns = {customer_id: 'VARCHAR', ts: 'BIGINT', event: 'VARCHAR'})
        GROUP BY customer_id))));
